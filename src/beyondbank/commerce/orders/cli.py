"""`beyondbank shop …`: the order jobs, run on a schedule (each is safe to run twice)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from beyondbank.commerce.orders import service
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway

app = typer.Typer(help="The partner shop's order jobs.", no_args_is_help=True)
console = Console()
Limit = Annotated[int, typer.Option(min=1, help="At most this many orders per run.")]


@contextmanager
def _unit() -> Iterator[tuple[UnitOfWork, BankCoreGateway]]:
    settings = get_settings()
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    clock = SystemClock()
    try:
        with UnitOfWork(factory, clock) as uow:
            yield uow, BankCoreGateway(factory, clock, timezone=settings.default_timezone)
    finally:
        engine.dispose()


@app.command("expire-reservations")
def expire_reservations(limit: Limit = 500) -> None:
    """Cancel orders still unpaid when their stock reservation ran out, and void any
    authorisation held for a cancelled order."""
    with _unit() as (uow, gateway):
        done = service.expire_reservations(uow, gateway, limit=limit)
    for order_id in done:
        console.print(f"cancelled {order_id}")
    console.print(f"{len(done)} order(s) cancelled or released")


@app.command("complete-orders")
def complete_orders(limit: Limit = 500) -> None:
    """Complete delivered orders whose return window has ended, accruing the bank's commission."""
    with _unit() as (uow, _gateway):
        done = service.complete_orders(uow, limit=limit)
    for order_id in done:
        console.print(f"completed {order_id}")
    console.print(f"{len(done)} order(s) completed")


@app.command("reauthorise-orders")
def reauthorise_orders(
    limit: Limit = 500,
    ahead_hours: Annotated[
        int,
        typer.Option(
            min=0,
            max=144,
            help="Also renew authorisations running out within this many hours (they last 7 days).",
        ),
    ] = 24,
) -> None:
    """Renew the bank's authorisation of paid orders not yet captured whose hold has run out or
    soon will; cancel an order (its customer told in its history) when the bank refuses.
    Exits 1 if an order could not be dealt with: the next run retries it."""
    with _unit() as (uow, gateway):
        due = service.renewals_due(uow, ahead=timedelta(hours=ahead_hours), limit=limit)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("re-authorising", total=max(len(due), 1))
            done = service.reauthorise_orders(
                uow,
                gateway,
                ahead=timedelta(hours=ahead_hours),
                limit=limit,
                progress=lambda _order_id: bar.advance(task),
            )
    for order_id in done.renewed:
        console.print(f"renewed {order_id}")
    for order_id in done.cancelled:
        console.print(f"cancelled {order_id}: the bank refused to renew its authorisation")
    for order_id, error in done.failed:
        console.print(f"[red]failed {order_id}: {error}[/red]")
    console.print(
        f"{len(done.renewed)} renewed, {len(done.cancelled)} cancelled, "
        f"{len(done.unchanged)} changed meanwhile, {len(done.failed)} failed"
    )
    if done.failed:
        raise typer.Exit(1)
