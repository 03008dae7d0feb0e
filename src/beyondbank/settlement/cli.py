"""`beyondbank settlement …`: the operator's month end: open periods, close them, pay out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.errors import Problem
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.settlement import exports, payouts, periods
from beyondbank.settlement.models import PeriodStatus, SettlementPeriod

app = typer.Typer(help="Settlement periods, statements and payouts.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@contextmanager
def _unit() -> Iterator[UnitOfWork]:
    engine = make_engine(get_settings().database_url)
    try:
        with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
            yield uow
    finally:
        engine.dispose()


def _fail(problem: Problem) -> typer.Exit:
    err.print(f"[red]{problem.title}[/red]: {problem.detail}")
    return typer.Exit(1)


@app.command("open-due")
def open_due(
    contract: Annotated[str | None, typer.Option(help="One contract's id; all if absent.")] = None,
) -> None:
    """Open every period that has started and does not exist yet."""
    with _unit() as uow:
        try:
            created = periods.open_due(uow, SYSTEM, contract_id=contract)
        except Problem as problem:
            raise _fail(problem) from None
        for period in created:
            console.print(f"opened {period.public_id} {period.starts_on} → {period.ends_on}")
        console.print(f"{len(created)} period(s) opened")


@app.command("close")
def close(period: Annotated[str, typer.Argument(help="The period's id.")]) -> None:
    """Close one ended period (again: prints the stored statement's digest, writes nothing)."""
    with _unit() as uow:
        try:
            closed = periods.close(uow, SYSTEM, period)
        except Problem as problem:
            raise _fail(problem) from None
        totals = json.loads(closed.statement.content)["totals"]
        verb = "closed" if closed.created else "already closed"
        console.print(
            f"{verb} {period}: net {totals['net_minor']} ({totals['direction']}), "
            f"sha256 {closed.statement.sha256}"
        )


@app.command("close-due")
def close_due() -> None:
    """Close every open period that has ended, oldest first; exit 1 if any could not close."""
    with _unit() as uow:
        now = uow.clock.now()
        due = list(
            uow.session.scalars(
                select(SettlementPeriod.public_id)
                .where(SettlementPeriod.status == PeriodStatus.OPEN, SettlementPeriod.end_at <= now)
                .order_by(SettlementPeriod.end_at, SettlementPeriod.id)
            )
        )
        uow.rollback()  # the closes below claim each period in a transaction of their own
    table = Table(title=f"{len(due)} period(s) to close")
    for column in ("period", "net", "direction", "result"):
        table.add_column(column)
    failed = 0
    for public_id in due:
        with _unit() as uow:
            try:
                closed = periods.close(uow, SYSTEM, public_id)
                totals = json.loads(closed.statement.content)["totals"]
                table.add_row(public_id, str(totals["net_minor"]), totals["direction"], "closed")
            except Problem as problem:
                failed += 1
                table.add_row(public_id, "", "", f"[red]{problem.detail}[/red]")
    console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command("payout")
def payout(
    currency: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. GBP.")],
    out: Annotated[Path, typer.Option(help="Where to write the pain.001 file.")],
    execution_date: Annotated[
        str | None, typer.Option(help="Requested execution date, YYYY-MM-DD; today if absent.")
    ] = None,
    debtor_iban: Annotated[str, typer.Option(help="The bank's account.")] = (
        payouts.DEFAULT_DEBTOR_IBAN
    ),
    debtor_bic: Annotated[str, typer.Option(help="The bank's BIC.")] = payouts.DEFAULT_DEBTOR_BIC,
) -> None:
    """Pay every closed period owed in CURRENCY and write the run's pain.001.001.09 file."""
    settings = get_settings()
    with _unit() as uow:
        try:
            debtor = payouts.check_debtor(settings.bank_name, debtor_iban, debtor_bic)
            run = payouts.create_run(
                uow,
                SYSTEM,
                currency=currency.upper(),
                debtor=debtor,
                execution_date=date.fromisoformat(execution_date) if execution_date else None,
            )
            document = payouts.pain001_of(uow, run)
        except Problem as problem:
            raise _fail(problem) from None
        out.write_bytes(document)
        paid = payouts.paid_lines(run)
        total = exports.decimal_text(sum(line.amount_minor for line in paid), run.currency)
        console.print(
            f"run {run.public_id}: {len(paid)} transfer(s), {total} {run.currency} → {out}"
        )
        for line in run.lines:
            if line not in paid:
                console.print(f"[yellow]not paid[/yellow] {line.party_ref}: {line.reason}")
