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


@dataclass
class Staged:
    """A feed's accepted rows, first of each txn_id, in (txn_time, txn_id) order: in memory when
    they fit in one chunk, else in an Arrow IPC scratch file read a chunk at a time."""

    rows: int
    frame: pl.DataFrame | None = None
    path: Path | None = None

    def chunks(self, chunk_rows: int) -> Iterator[pl.DataFrame]:
        for start in range(0, self.rows, chunk_rows):
            if self.frame is not None:
                yield self.frame.slice(start, chunk_rows)
            elif self.path is not None:
                yield pl.scan_ipc(self.path).slice(start, chunk_rows).collect()


def _first_of_each_in_time_order(rows: pl.LazyFrame) -> pl.LazyFrame:
    # Rows come in file order, so the first occurrence of a txn_id is its lowest line.
    return rows.filter(pl.col("txn_id").is_first_distinct()).sort(["txn_time", "txn_id"])


def stage(
    path: Path,
    work: Path,
    quarantine: Path,
    *,
    chunk_rows: int = 1_000_000,
    on_rows: Callable[[int], None] = lambda n: None,
) -> tuple[Staged, Counts]:
    """Read and validate the feed: bad rows to the quarantine file, the accepted ones staged.

    Accepted rows stay in memory while they fit in one chunk; beyond that they spill to
    uncompressed Arrow IPC scratch files (several times faster to write and read than Parquet),
    numbered in file order, and Polars' streaming engine sorts them into one file."""
    counts = Counts()
    held: list[pl.DataFrame] = []
    spill = work / "accepted"
    spilled = 0
    with quarantine.open("w", encoding="utf-8", newline="") as bad:
        bad.write("line,reason,raw\n")
        for chunk in feed.read_feed(path, chunk_rows=chunk_rows):
            counts.accepted += chunk.accepted.height
            counts.quarantined += chunk.quarantined.height
            counts.rows_read += chunk.rows
            _count_reasons(counts.reasons, chunk.quarantined)
            if chunk.quarantined.height:
                chunk.quarantined.write_csv(bad, include_header=False)
            if chunk.accepted.height:
                held.append(chunk.accepted)
            if spilled or counts.accepted > chunk_rows:
                spill.mkdir(exist_ok=True)
                for frame in held:
                    frame.write_ipc(spill / f"{spilled:06d}.arrow", compression="uncompressed")
                    spilled += 1
                held = []
            on_rows(chunk.rows)
    if not spilled:
        everything = pl.concat(held) if held else frames.empty(frames.TRANSACTIONS)
        frame = _first_of_each_in_time_order(everything.lazy()).collect()
        staged = Staged(frame.height, frame=frame)
    else:
        target = work / "staged.arrow"
        _first_of_each_in_time_order(pl.scan_ipc(spill / "*.arrow")).sink_ipc(
            target, compression="uncompressed"
        )
        rows = int(pl.scan_ipc(target).select(pl.len()).collect().item())
        staged = Staged(rows, path=target)
    counts.duplicates = counts.accepted - staged.rows
    counts.accepted = staged.rows
    return staged, counts


def _count_reasons(reasons: dict[str, int], quarantined: pl.DataFrame) -> None:
    if not quarantined.height:
        return
    kinds = quarantined.select(pl.col("reason").str.split(":").list.first().alias("kind"))
    for kind, n in kinds.group_by("kind").len().iter_rows():
        reasons[kind] = reasons.get(kind, 0) + n


def write_rewards(parts: Path, parquet: Path, csv: Path, schema: pl.Schema) -> None:
    """The rewards file, as Parquet and CSV, from the parts the chunks wrote (in chunk order)."""
    if any(parts.iterdir()):
        pl.scan_parquet(parts / "*.parquet").sink_parquet(parquet)
        pl.scan_parquet(parquet).sink_csv(csv)
        return
    frames.empty(schema).write_parquet(parquet)
    frames.empty(schema).write_csv(csv)
