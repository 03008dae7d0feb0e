"""`beyondbank cards …`: generate a synthetic card feed for the programme, run a feed through
the matching engine (exactly once), preview what a feed would earn, post what an interrupted
run left, list runs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from beyondbank.cards import frames, generate, posting, programme, service, stream
from beyondbank.cards.feed import FeedFormatError
from beyondbank.cards.models import CardRun
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.errors import Problem
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory

app = typer.Typer(help="Card-linked benefits: card feeds and matching runs.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

# A drill for the exactly-once guarantee: the process dies (as if killed) at the named stage,
# e.g. `chunk-1-committed`; rerunning must leave the ledger as one clean run would.
CRASH_AT = "BEYONDBANK_CARDS_CRASH_AT"


@contextmanager
def _unit() -> Iterator[UnitOfWork]:
    engine = make_engine(get_settings().database_url)
    try:
        with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
            yield uow
    finally:
        engine.dispose()


def _checkpoint(stage: str) -> None:
    if os.environ.get(CRASH_AT) == stage:
        err.print(f"[red]{CRASH_AT}={stage}: dying here as if killed[/red]")
        os._exit(137)


@app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option("--out", help="The feed file to write: .csv or .parquet")],
    transactions: Annotated[int, typer.Option(min=1, help="How many transactions")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same file")] = 1,
    days: Annotated[int, typer.Option(min=1, help="Days the feed covers, ending yesterday")] = 7,
    bad_share: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of deliberately bad rows")
    ] = 0.001,
) -> None:
    """Write a realistic synthetic card feed for the programme in the database."""
    if out.suffix not in (".csv", ".parquet"):
        raise typer.BadParameter("the file must end in .csv or .parquet", param_hint="--out")
    settings = get_settings()
    with _unit() as uow:
        world = service.feed_world(uow, settings.default_currency)
    if not world.merchants.height or not world.cards.height:
        err.print("[red]The programme has no active merchants or no linked cards yet.[/red]")
        raise typer.Exit(1)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    batches = generate.generate_feed(
        world,
        transactions=transactions,
        seed=seed,
        start=today - timedelta(days=days),
        days=days,
        bad_share=bad_share,
    )
    written = generate.write_feed(out, batches, progress=console.is_terminal, total=transactions)
    console.print(f"wrote {written:,} card transactions to {out}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A card feed file")],
    out_dir: Annotated[
        Path | None, typer.Option(help="Where quarantine and rewards files go")
    ] = None,
    chunk_rows: Annotated[int | None, typer.Option(min=1, help="Rows per committed chunk")] = None,
) -> None:
    """Match a feed file and post its rewards, exactly once; print the run's summary."""
    settings = get_settings()
    with _unit() as uow, _progress() as bar:
        staged = bar.add_task("reading and validating", total=None)
        matched = bar.add_task("matching", total=None, visible=False)
        posted = bar.add_task("posting to the ledger", total=None, visible=False)

        def total(n: int) -> None:
            bar.update(staged, total=bar.tasks[staged].completed)
            bar.update(matched, total=n, visible=True)

        progress = service.Progress(
            staged=lambda n: bar.advance(staged, n),
            matched=lambda n: bar.advance(matched, n),
            posted=lambda n: bar.update(posted, advance=n, visible=True),
            total=total,
        )
        try:
            run = service.run_file(
                uow,
                file,
                out_dir=out_dir or settings.cards_output_dir,
                chunk_rows=chunk_rows or settings.cards_chunk_rows,
                threshold=settings.cards_descriptor_threshold,
                progress=progress,
                checkpoint=_checkpoint,
            )
        except Problem as problem:
            err.print(f"[red]{problem.title}[/red]: {problem.detail}")
            raise typer.Exit(1) from None
        console.print(summary_table(run, service.run_totals(uow, run.id)))


def summary_table(run: CardRun, totals: dict[str, int]) -> Table:
    table = Table(title=f"Card-linked run {run.public_id}: {run.source} ({run.status.value})")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in (
        ("rows read", run.rows_read),
        ("  quarantined", run.quarantined),
        ("  accepted", run.accepted),
        ("    duplicates skipped", run.duplicates),
        ("    seen in earlier runs", run.already_seen),
        ("    matched", run.matched),
        ("      unresolved merchant", run.unresolved),
        ("rewards granted", run.rewards),
        ("clawbacks", run.clawbacks),
        ("ledger rows posted", run.posted),
    ):
        table.add_row(label, f"{value:,}")
    for reason, n in sorted(run.details.get("quarantine_reasons", {}).items()):
        table.add_row(f"  quarantined: {reason}", f"{n:,}")
    for key, amount in sorted(totals.items()):
        table.add_row(key.replace(":", " "), f"{amount:,}")
    table.caption = f"quarantine: {run.quarantine_path}\nrewards: {run.rewards_path}"
    return table


@app.command("preview")
def preview_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A card feed file")],
    out_dir: Annotated[
        Path | None, typer.Option(help="Where quarantine and rewards files go")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1_000, help="Rows read at a time")] = 500_000,
) -> None:
    """What a feed file would earn against the programme as it stands, matched in memory:
    nothing is posted, spent or recorded as seen (`cards run` does that)."""
    settings = get_settings()
    target = out_dir or settings.cards_output_dir
    target.mkdir(parents=True, exist_ok=True)
    with _unit() as uow:
        whole, state = programme.whole_programme(uow)
        resolver = service.build_resolver(uow, settings.cards_descriptor_threshold)
    stem = f"preview-{file.stem}"
    files = (target / f"{stem}-rewards.parquet", target / f"{stem}-rewards.csv")
    with _progress() as bar, tempfile.TemporaryDirectory(dir=target, prefix=f"{stem}-") as work:
        read = bar.add_task("reading, validating and matching", total=None)
        try:
            result = stream.run(
                file,
                Path(work),
                target / f"{stem}-quarantine.csv",
                files,
                programme=whole,
                resolver=resolver,
                state=state,
                chunk_rows=chunk_rows,
                on_rows=lambda n: bar.advance(read, n),
            )
        except FeedFormatError as bad:
            err.print(f"[red]Not a card feed[/red]: {bad}")
            raise typer.Exit(1) from None
    console.print(preview_table(file, result, files[0]))


def preview_table(file: Path, result: stream.Result, rewards: Path) -> Table:
    earned = pl.read_parquet(rewards)
    table = Table(title=f"Preview of {file.name} (nothing posted)")
    table.add_column("")
    table.add_column("count", justify="right")
    counts = result.counts
    for label, value in (
        ("rows read", counts.rows_read),
        ("  quarantined", counts.quarantined),
        ("  duplicates skipped", counts.duplicates),
        ("  purchases with no member's card", result.set_aside),
        ("  matched", result.matched),
        ("rewards", earned.filter(pl.col("kind") == frames.REWARD).height),
        ("clawbacks", earned.filter(pl.col("kind") == frames.CLAWBACK).height),
    ):
        table.add_row(label, f"{value:,}")
    for reason, n in sorted(counts.reasons.items()):
        table.add_row(f"  quarantined: {reason}", f"{n:,}")
    sums = earned.group_by("kind", "currency").agg(
        pl.col("amount_minor").sum(), pl.col("commission_minor").sum(), pl.col("points").sum()
    )
    for kind, currency, cash, commission, points in sums.sort("kind", "currency").iter_rows():
        table.add_row(f"{kind} cash ({currency}, minor units)", f"{cash:,}")
        table.add_row(f"{kind} commission ({currency}, minor units)", f"{commission:,}")
        table.add_row(f"{kind} points", f"{points:,}")
    table.caption = (
        f"{'streamed in time order' if result.streamed else 'staged whole'}; rewards: {rewards}"
    )
    return table


@app.command("post")
def post_command() -> None:
    """Post whatever reward rows an interrupted run left unposted."""
    with _unit() as uow:
        n = posting.post_outbox(uow, now=uow.clock.now)
    console.print(f"{n:,} reward row(s) posted")


@app.command("runs")
def runs_command(limit: Annotated[int, typer.Option(min=1, max=200)] = 20) -> None:
    """The latest runs and their counts."""
    with _unit() as uow:
        runs, _ = service.list_runs(uow, SYSTEM, limit=limit)
        table = Table(title="Card-linked runs")
        for column in ("run", "file", "status", "read", "quarantined", "matched", "rewards"):
            table.add_column(column)
        for r in runs:
            table.add_row(
                r.public_id,
                r.source,
                r.status.value,
                f"{r.rows_read:,}",
                f"{r.quarantined:,}",
                f"{r.matched:,}",
                f"{r.rewards:,}",
            )
    console.print(table)
