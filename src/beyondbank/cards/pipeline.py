"""The columnar stages of a card run that need no database: staging a feed file (validate,
quarantine, keep the first row of each txn_id, sort by time) and writing the rewards file.

A run on the database (`service.run_file`) and the benchmark of the pure pipeline
(`bench/cards/pipeline.py`) call the same functions, so what is measured is what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from beyondbank.cards import feed, frames


@dataclass
class Counts:
    """What staging read: rows_read = accepted + quarantined + duplicates."""

    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def stage(
    path: Path,
    work: Path,
    quarantine: Path,
    *,
    chunk_rows: int = 1_000_000,
    on_rows: Callable[[int], None] = lambda n: None,
) -> tuple[Path, Counts]:
    """The accepted rows, first of each txn_id, sorted by (txn_time, txn_id), as one Arrow IPC
    file (scratch space: uncompressed, several times faster to write and read than Parquet); bad rows appended to the quarantine file."""
    counts = Counts()
    accepted_dir = work / "accepted"
    accepted_dir.mkdir()
    with quarantine.open("w", encoding="utf-8", newline="") as bad:
        bad.write("line,reason,raw\n")
        for index, chunk in enumerate(feed.read_feed(path, chunk_rows=chunk_rows)):
            counts.accepted += chunk.accepted.height
            counts.quarantined += chunk.quarantined.height
            counts.rows_read += chunk.accepted.height + chunk.quarantined.height
            _count_reasons(counts.reasons, chunk.quarantined)
            if chunk.quarantined.height:
                chunk.quarantined.write_csv(bad, include_header=False)
            if chunk.accepted.height:
                chunk.accepted.write_ipc(
                    accepted_dir / f"{index:06d}.arrow", compression="uncompressed"
                )
            on_rows(chunk.accepted.height + chunk.quarantined.height)
    staged = work / "staged.arrow"
    if counts.accepted == 0:
        frames.empty(frames.TRANSACTIONS).write_ipc(staged)
        return staged, counts
    (
        # The parts are numbered in file order and each is in line order, so the first
        # occurrence of a txn_id in the scan is its lowest line.
        pl.scan_ipc(accepted_dir / "*.arrow")
        .filter(pl.col("txn_id").is_first_distinct())
        .sort(["txn_time", "txn_id"])
        .sink_ipc(staged, compression="uncompressed")
    )
    unique = staged_rows(staged)
    counts.duplicates = counts.accepted - unique
    counts.accepted = unique
    return staged, counts


def _count_reasons(reasons: dict[str, int], quarantined: pl.DataFrame) -> None:
    if not quarantined.height:
        return
    kinds = quarantined.select(pl.col("reason").str.split(":").list.first().alias("kind"))
    for kind, n in kinds.group_by("kind").len().iter_rows():
        reasons[kind] = reasons.get(kind, 0) + n


def chunks(staged: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The staged rows in (txn_time, txn_id) order, `chunk_rows` at a time."""
    for start in range(0, staged_rows(staged), chunk_rows):
        yield pl.scan_ipc(staged).slice(start, chunk_rows).collect()


def staged_rows(staged: Path) -> int:
    return int(pl.scan_ipc(staged).select(pl.len()).collect().item())


def write_rewards(parts: Path, parquet: Path, csv: Path, schema: pl.Schema) -> None:
    """The rewards file, as Parquet and CSV, from the parts the chunks wrote (in chunk order)."""
    if any(parts.iterdir()):
        pl.scan_parquet(parts / "*.parquet").sink_parquet(parquet)
        pl.scan_parquet(parquet).sink_csv(csv)
        return
    frames.empty(schema).write_parquet(parquet)
    frames.empty(schema).write_csv(csv)
