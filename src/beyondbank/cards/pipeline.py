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


ORDER = ["txn_time", "txn_id"]
_HASH = pl.col("txn_id").hash(seed=1).alias("hash")


@dataclass
class Staged:
    """A feed's accepted rows, first of each txn_id, in (txn_time, txn_id) order: in memory when
    they fit in one chunk, else as sorted runs on disk merged a slice at a time."""

    rows: int
    frame: pl.DataFrame | None = None
    runs: list[Path] = field(default_factory=list)
    dropped_lines: pl.Series | None = None  # later rows of a txn_id, left out of the runs' merge

    def chunks(self, chunk_rows: int) -> Iterator[pl.DataFrame]:
        if self.frame is not None:
            for start in range(0, self.rows, chunk_rows):
                yield self.frame.slice(start, chunk_rows)
            return
        pending: list[pl.DataFrame] = []
        held = 0
        for merged in _merge(self.runs, max(chunk_rows // max(len(self.runs), 1), 10_000)):
            if self.dropped_lines is not None and len(self.dropped_lines):
                merged = merged.filter(~pl.col("line").is_in(self.dropped_lines.implode()))
            pending.append(merged)
            held += merged.height
            while held >= chunk_rows:
                ready = pl.concat(pending)
                yield ready.slice(0, chunk_rows)
                rest = ready.slice(chunk_rows)
                pending, held = [rest], rest.height
        if held:
            yield pl.concat(pending)


def _merge(runs: list[Path], slice_rows: int) -> Iterator[pl.DataFrame]:
    """The rows of sorted runs in one order, a batch at a time, holding at most one slice of
    each run (a k-way merge by batches: everything up to the smallest last key among the runs'
    current slices can go out, since no unread row can come before it)."""
    sizes = [int(pl.scan_ipc(r).select(pl.len()).collect().item()) for r in runs]
    offsets = [0] * len(runs)
    buffers = [frames.empty(frames.TRANSACTIONS)] * len(runs)
    while True:
        for i, run in enumerate(runs):
            if not buffers[i].height and offsets[i] < sizes[i]:
                buffers[i] = pl.scan_ipc(run).slice(offsets[i], slice_rows).collect()
                offsets[i] += slice_rows
        if not any(b.height for b in buffers):
            return
        # Runs with rows still unread bound what may go out now; fully read runs do not.
        tails = [
            (b.item(-1, "txn_time"), b.item(-1, "txn_id"))
            for b, offset, size in zip(buffers, offsets, sizes, strict=True)
            if b.height and offset < size
        ]
        upto: pl.Expr = pl.lit(True)
        if tails:
            time, txn_id = min(tails)
            upto = (pl.col("txn_time") < time) | (
                (pl.col("txn_time") == time) & (pl.col("txn_id") <= txn_id)
            )
        out = [b.filter(upto) for b in buffers if b.height]
        buffers = [b.filter(~upto) if b.height else b for b in buffers]
        yield pl.concat(out).sort(ORDER)


def _first_of_each_in_time_order(rows: pl.LazyFrame) -> pl.LazyFrame:
    # Rows come in file order, so the first occurrence of a txn_id is its lowest line.
    return rows.filter(pl.col("txn_id").is_first_distinct()).sort(ORDER)


def stage(
    path: Path,
    work: Path,
    quarantine: Path,
    *,
    chunk_rows: int = 1_000_000,
    on_rows: Callable[[int], None] = lambda n: None,
) -> tuple[Staged, Counts]:
    """Read and validate the feed: bad rows to the quarantine file, the accepted ones staged.

    Accepted rows stay in memory while they fit in one chunk. Beyond that, each chunk is sorted
    and written as a run (uncompressed Arrow IPC, several times faster than Parquet) and the
    runs are merged as they are read (`Staged.chunks`), so memory stays near two chunks
    whatever the file's size. Repeated txn_ids are found by a 64-bit hash of every txn_id kept
    in memory (16 bytes a row) and confirmed by the txn_ids themselves."""
    counts = Counts()
    held: list[pl.DataFrame] = []
    runs: list[Path] = []
    hashes: list[pl.DataFrame] = []
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
            if runs or counts.accepted > chunk_rows:
                for frame in held:
                    runs.append(work / f"run-{len(runs):06d}.arrow")
                    frame.sort(ORDER).write_ipc(runs[-1], compression="uncompressed")
                    hashes.append(frame.select(_HASH, "line"))
                held = []
            on_rows(chunk.rows)
    if not runs:
        everything = pl.concat(held) if held else frames.empty(frames.TRANSACTIONS)
        frame = _first_of_each_in_time_order(everything.lazy()).collect()
        staged = Staged(frame.height, frame=frame)
    else:
        dropped = _later_rows_of_repeated_ids(runs, pl.concat(hashes))
        staged = Staged(counts.accepted - len(dropped), runs=runs, dropped_lines=dropped)
    counts.duplicates = counts.accepted - staged.rows
    counts.accepted = staged.rows
    return staged, counts


def _later_rows_of_repeated_ids(runs: list[Path], hashes: pl.DataFrame) -> pl.Series:
    """The lines of every row whose txn_id came earlier in the file."""
    repeated = hashes.filter(pl.col("hash").is_duplicated()).get_column("hash").unique()
    if not len(repeated):
        return pl.Series("line", [], pl.Int64())
    candidates = (
        pl.scan_ipc(runs)
        .select("txn_id", "line")
        .filter(_HASH.is_in(repeated.implode()))
        .collect()
        .sort("line")
    )
    return candidates.filter(~pl.col("txn_id").is_first_distinct()).get_column("line")


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
