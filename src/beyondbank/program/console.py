"""The import on a terminal: progress bars while it writes, then a summary or every problem."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from beyondbank.core.clock import Clock
from beyondbank.core.settings import Settings
from beyondbank.program.service import ImportResult, import_program
from beyondbank.program.source import Document, Issue, UnreadableFile, read_file
from beyondbank.program.validation import ImportRejected


class RichProgress:
    """A bar per stage of the write, after a spinner for reading and checking the file."""

    def __init__(self, progress: Progress, checking: TaskID) -> None:
        self._progress = progress
        self._checking: TaskID | None = checking
        self._tasks: dict[str, TaskID] = {}

    def start(self, stage: str, total: int) -> None:
        self.checked()
        self._tasks[stage] = self._progress.add_task(stage, total=max(total, 1))
        if total == 0:
            self._progress.update(self._tasks[stage], completed=1)

    def advance(self, stage: str, steps: int = 1) -> None:
        self._progress.advance(self._tasks[stage], steps)

    def checked(self) -> None:
        if self._checking is not None:
            self._progress.update(self._checking, total=1, completed=1)
            self._checking = None


def progress_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # the summary (or the problems) replace the bars
    )


def run_import(
    bind: Engine,
    path: Path,
    *,
    settings: Settings,
    clock: Clock,
    check_only: bool,
    out: Console,
    err: Console,
) -> bool:
    """Import the file and tell the operator what happened; False when nothing was written."""
    started = time.perf_counter()
    try:
        document = read_file(path)
    except UnreadableFile as exc:
        print_issues(err, path.name, exc.issues)
        return False
    try:
        with progress_bar(out) as bar:
            reporter = RichProgress(bar, bar.add_task(f"checking {path.name}", total=None))
            result = import_program(
                bind,
                document,
                clock=clock,
                default_currency=settings.default_currency,
                progress=reporter,
                check_only=check_only,
            )
            reporter.checked()
    except ImportRejected as exc:
        print_issues(err, document.name, exc.issues)
        return False
    print_result(out, document, result, time.perf_counter() - started)
    return True


def print_issues(console: Console, name: str, issues: list[Issue]) -> None:
    count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
    console.print(f"[bold red]{name}: {count}; nothing was written.[/]")
    for issue in issues:
        # Messages quote the file's text: never read them as Rich markup.
        console.print(issue.format(name), markup=False, highlight=False, soft_wrap=True)


def print_result(
    console: Console, document: Document, result: ImportResult, seconds: float
) -> None:
    for warning in result.warnings:
        console.print(
            f"warning: {warning.format(document.name)}",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    summary = result.summary
    verb = "imported" if result.written else "is valid; nothing written (--check)"
    table = Table(title=f"{document.name} {verb}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in summary.counts.items():
        table.add_row(what, f"{count:,}")
    for label, statuses in (
        ("merchants", summary.merchant_statuses),
        ("benefits", summary.benefit_statuses),
    ):
        if statuses:
            shown = ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
            table.add_row(f"{label} by status", shown)
    console.print(table)
    console.print(f"{'imported' if result.written else 'checked'} in {seconds:.1f} s")
