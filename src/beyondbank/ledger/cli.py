"""`beyondbank ledger …`: operator commands over the ledger (verification)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import make_session_factory
from beyondbank.ledger import verify

app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
console = Console()


def report_table(report: verify.Report) -> Table:
    table = Table(title=f"Ledger verification: {len(report.checks)} checks")
    table.add_column("check")
    table.add_column("what it checks")
    table.add_column("checked", justify="right")
    table.add_column("violations", justify="right")
    for check in report.checks:
        table.add_row(
            check.name,
            check.description,
            f"{check.checked:,}",
            "[green]0[/green]" if check.ok else f"[red]{check.violation_count:,}[/red]",
        )
    return table


@app.command("verify")
def verify_command() -> None:
    """Check every ledger invariant; print what was checked and each violation; exit 1 on any."""
    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            report = verify.run(session)
    finally:
        engine.dispose()
    console.print(report_table(report))
    for check in report.checks:
        for violation in check.violations:
            console.print(f"[red]{check.name}[/red]: {violation.message}")
        if check.violation_count > len(check.violations):
            console.print(
                f"[red]{check.name}[/red]: … and {check.violation_count - len(check.violations)} more"
            )
    if not report.ok:
        console.print(f"[red]{report.violation_count} violation(s)[/red]")
        raise typer.Exit(1)
    console.print("[green]the ledger is sound[/green]")
