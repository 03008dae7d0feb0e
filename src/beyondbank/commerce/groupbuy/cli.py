"""`beyondbank shop close-group-buys`: the group-buy close job, run on a schedule (safe to run
twice, or after a crash: it settles each campaign once and refunds each order once)."""

from __future__ import annotations

import typer
from rich.console import Console

from beyondbank.commerce.groupbuy import closing
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway

app = typer.Typer(help="Group buying.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("close-group-buys")
def close_group_buys() -> None:
    """Close every campaign past its window (final tier, refunds of the difference, or in full
    below the minimum) and retry refunds a gateway error left pending. Exits 1 while any
    refund is still pending, so a scheduler notices."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    clock = SystemClock()
    try:
        with UnitOfWork(factory, clock) as uow:
            run = closing.close_due(
                uow, BankCoreGateway(factory, clock, timezone=settings.default_timezone)
            )
    finally:
        engine.dispose()
    for settled in run.settled:
        price = "" if settled.final_unit_minor is None else f" at {settled.final_unit_minor}"
        console.print(
            f"{settled.group_buy_id} {settled.status.value}: {settled.units} units in "
            f"{settled.orders} order(s){price}, {settled.refund_minor} to refund"
        )
    console.print(
        f"{run.opened} opened, {len(run.settled)} closed, {run.refunds.refunded} refund(s) made "
        f"({run.refunds.refunded_minor} minor units), {run.refunds.failed} pending after an error"
    )
    if run.late:
        console.print(f"{run.late} order(s) paid after their campaign failed or was cancelled")
    for reason in run.deferred:
        console.print(f"waiting: {reason}")
    for error in run.refunds.errors:
        err.print(error)
    if run.refunds.failed:
        raise typer.Exit(1)
