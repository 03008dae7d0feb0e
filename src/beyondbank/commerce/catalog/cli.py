"""`beyondbank shop import-catalog` and `beyondbank shop retail-history`: a partner's catalog feed
from a file, and the Online Retail order history as Parquet with a short summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from beyondbank.commerce.catalog import retail, service
from beyondbank.commerce.catalog.feed import sniff_format
from beyondbank.commerce.models import CatalogImport
from beyondbank.commerce.service import get_partner
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.errors import Problem
from beyondbank.core.money import Money
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory

# Merged into `beyondbank shop` by cli.py, beside the other shop areas' commands.
app = typer.Typer(help="The partner shop's catalog.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

FormatName = Literal["csv", "json", "online-retail"]


@contextmanager
def _unit() -> Iterator[UnitOfWork]:
    engine = make_engine(get_settings().database_url)
    try:
        with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
            yield uow
    finally:
        engine.dispose()


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def _summary(job: CatalogImport, seconds: float) -> Table:
    table = Table(title=f"Catalog import {job.public_id} ({job.status.value}) in {seconds:.1f} s")
    table.add_column("rows read", justify="right")
    table.add_column("created", justify="right")
    table.add_column("updated", justify="right")
    table.add_column("unchanged", justify="right")
    table.add_column("rejected", justify="right")
    table.add_row(
        *(f"{n:,}" for n in (job.rows_read, job.created, job.updated, job.unchanged, job.rejected))
    )
    return table


@app.command("import-catalog")
def import_catalog(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The feed file")],
    partner: Annotated[str, typer.Option("--partner", help="The partner's id (prt_…)")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, json (JSON Lines or one array) or online-retail; default: from the name",
        ),
    ] = None,
    limit_lines: Annotated[
        int | None,
        typer.Option(min=1, help="online-retail only: read only the first N lines"),
    ] = None,
) -> None:
    """Import a partner's catalog feed: new products created, changed ones updated, the same
    feed again changes nothing; every rejected row is listed with its line and reason."""
    chosen = fmt or ("online-retail" if file.name == retail.RETAIL_FILE else None)
    chosen = chosen or sniff_format(None, file.name)
    if chosen not in ("csv", "json", "online-retail"):
        err.print(
            "[red]Say --format csv, json or online-retail: the file name does not tell.[/red]"
        )
        raise typer.Exit(2)
    started = time.perf_counter()
    with _unit() as uow:
        try:
            job, lines = _run(uow, file, partner, chosen, limit_lines)
        except Problem as problem:
            err.print(f"[red]{problem.detail}[/red]")
            raise typer.Exit(1) from None
        # Printed inside the unit of work: leaving it rolls back, which expires what it loaded.
        _print_import(uow, job, lines, time.perf_counter() - started)


def _run(
    uow: UnitOfWork, file: Path, partner: str, chosen: str, limit_lines: int | None
) -> tuple[CatalogImport, retail.LineCounts | None]:
    owner = get_partner(uow, partner)
    with _progress() as bar:
        task = bar.add_task(f"importing {file.name}", total=None)

        def advance(n: int) -> None:
            bar.update(task, completed=n)

        if chosen == "online-retail":
            bar.update(task, description=f"deriving products from {file.name}")
            result = service.import_online_retail(
                uow,
                SYSTEM,
                owner,
                file,
                limit_lines=limit_lines,
                progress=advance,
                on_derived=lambda n: bar.update(
                    task, description=f"importing {n:,} products from {file.name}"
                ),
            )
            return result.job, result.lines
        with file.open("rb") as stream:
            job = service.import_feed(
                uow,
                SYSTEM,
                owner,
                stream,
                "csv" if chosen == "csv" else "json",
                source=file.name,
                progress=advance,
            )
        return job, None


def _print_import(
    uow: UnitOfWork, job: CatalogImport, lines: retail.LineCounts | None, seconds: float
) -> None:
    console.print(_summary(job, seconds))
    if lines is not None:
        console.print(
            f"{lines.lines:,} lines: {lines.sales:,} sales gave {job.rows_read:,} products; "
            f"skipped {lines.cancellations:,} cancellations, {lines.not_products:,} postage, fee "
            f"and adjustment lines, {lines.bad_price:,} with a zero, negative or sub-penny price, "
            f"{lines.no_description:,} without a description and "
            f"{lines.non_positive_quantity:,} with no quantity"
        )
    rejects, _ = service.import_rejects(uow, job, cursor=None, limit=20)
    if rejects:
        table = Table(title=f"First rejected rows (of {job.rejected:,})")
        table.add_column("line", justify="right")
        table.add_column("field")
        table.add_column("reason")
        for reject in rejects:
            table.add_row(str(reject.line), reject.field or "", reject.reason)
        console.print(table)


@app.command("retail-history")
def retail_history(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where online_retail.csv.gz is; default: the data_dir setting"),
    ] = None,
    out: Annotated[Path, typer.Option(help="The directory to write the Parquet file to")] = Path(
        "var/shop"
    ),
    top: Annotated[int, typer.Option(min=1, max=100, help="How many top products to show")] = 10,
) -> None:
    """Write the cleaned Online Retail order history as Parquet and print monthly revenue, the
    top products and basket sizes (for analytics and demos; nothing goes into the database)."""
    source = retail.retail_path(data_dir or get_settings().data_dir)
    if not source.exists():
        err.print(f"[red]{source} not found: set BEYONDBANK_DATA_DIR or --data-dir.[/red]")
        raise typer.Exit(1)
    with console.status(f"reading {source.name}"):
        path = retail.write_history(retail.read_lines(source), out)
        summary = retail.summarise(path, top=top)
    console.print(f"wrote {path}")
    monthly = Table(title="Revenue by month (sales less cancellations)")
    monthly.add_column("month")
    monthly.add_column("invoices", justify="right")
    monthly.add_column("revenue", justify="right")
    for month, invoices, revenue in summary.monthly.iter_rows():
        monthly.add_row(month, f"{invoices:,}", Money(int(revenue), "GBP").format())
    console.print(monthly)
    best = Table(title=f"Top {top} products by revenue")
    for name in ("sku", "product", "units", "revenue"):
        best.add_column(name, justify="right" if name in ("units", "revenue") else "left")
    for sku, description, units, revenue in summary.top_products.iter_rows():
        best.add_row(sku, description or "", f"{units:,}", Money(int(revenue), "GBP").format())
    console.print(best)
    b = summary.baskets
    console.print(
        f"{int(b['invoices']):,} invoices; a basket has {b['mean_lines']:.1f} lines on average "
        f"(median {b['median_lines']:.0f}) and {b['mean_units']:.0f} units (median "
        f"{b['median_units']:.0f})"
    )
