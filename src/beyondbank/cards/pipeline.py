"""The columnar stages of a card run that need no database: staging a feed file (validate,
quarantine, keep the first row of each txn_id, set aside what cannot earn, sort the rest by
time) and writing the rewards file.

A run on the database (`service.run_file`) and the benchmark of the pure pipeline
(`bench/cards/pipeline.py`) call the same functions, so what is measured is what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from beyondbank.cards import feed, frames
from beyondbank.core import threads


@dataclass
class Counts:
    """What staging read: rows_read = accepted + quarantined + duplicates."""

    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


ORDER = ["txn_time", "txn_id"]
# Chunks read and validated at once, on worker threads: as many as the machine has cores for
# (Polars parallelises little within one chunk's validation).
STAGING_WORKERS = 2
_TOKEN_HASH = pl.col("card_token").hash(seed=2)


def txn_hash(txn_id: pl.Expr) -> pl.Expr:
    """The 64-bit hash repeated txn_ids are found by (then confirmed on the txn_ids)."""
    return txn_id.hash(seed=1).alias("hash")


def can_earn(members: pl.Series) -> pl.Expr:
    """A row that may earn or claw back: a refund or chargeback, or a purchase made with a card
    whose token hashes to one of `members` (`token_hashes`)."""
    return (pl.col("type") != frames.PURCHASE) | _TOKEN_HASH.is_in(members.implode())


# What a run keeps of a purchase no member's card made: enough to record it as seen (each
# txn_id counts once, ever) and to be a refund's original; it can earn nothing.
OTHER = pl.Schema(
    {
        "line": pl.Int64(),
        "txn_id": pl.String(),
        "txn_time": frames.UTC_TIME,
        "amount_minor": pl.Int64(),
        "currency": pl.String(),
        "hash": pl.UInt64(),
    }
)


def token_hashes(tokens: pl.Series) -> pl.Series:
    """The hashes `stage` tells members' cards by: a purchase whose card token hashes to none
    of these cannot earn. (A collision only keeps a purchase for the engine, which compares the
    tokens themselves.)"""
    return tokens.to_frame("card_token").select(_TOKEN_HASH).to_series().unique()


@dataclass
class Staged:
    """A feed's accepted rows, first of each txn_id. The rows that can earn, in (txn_time,
    txn_id) order: in memory when they fit in one chunk, else as sorted runs on disk merged a
    slice at a time. Purchases no member's card made (`others`, when staging was told the
    members' cards): set aside in file order, in the few columns that recording them needs."""

    rows: int
    frame: pl.DataFrame | None = None
    runs: list[Path] = field(default_factory=list)
    dropped_lines: pl.Series | None = None  # later rows of a txn_id, left out of the runs' merge
    others: list[Path] = field(default_factory=list)
    other_rows: int = 0

    def chunks(self, chunk_rows: int) -> Iterator[pl.DataFrame]:
        if self.frame is not None:
            for start in range(0, self.frame.height, chunk_rows):
                yield self.frame.slice(start, chunk_rows)
            return
        slice_rows = max(chunk_rows // max(len(self.runs), 1), 10_000)
        merged = frames.merge_sorted_runs(self.runs, ORDER, slice_rows)
        yield from frames.rebatched(
            (self._without_dropped(piece.drop("hash")) for piece in merged), chunk_rows
        )

    def other_chunks(self, chunk_rows: int) -> Iterator[pl.DataFrame]:
        """The purchases no member's card made (OTHER without its hash), in file order."""
        for part in self.others:
            rows = self._without_dropped(pl.read_ipc(part)).drop("hash")
            for start in range(0, rows.height, chunk_rows):
                yield rows.slice(start, chunk_rows)

    def _without_dropped(self, rows: pl.DataFrame) -> pl.DataFrame:
        if self.dropped_lines is None or not len(self.dropped_lines):
            return rows
        return rows.filter(~pl.col("line").is_in(self.dropped_lines.implode()))


def stage(
    path: Path,
    work: Path,
    quarantine: Path,
    *,
    chunk_rows: int = 1_000_000,
    members: pl.Series | None = None,
    on_rows: Callable[[int], None] = lambda n: None,
    on_accepted: Callable[[pl.DataFrame], None] = lambda rows: None,
) -> tuple[Staged, Counts]:
    """Read and validate the feed: bad rows to the quarantine file, the accepted ones staged.

    `members` are the `token_hashes` of every card a member ever linked. Given them, purchases
    made with other cards are set aside at once (`Staged.others`): they are most of a bank's
    card traffic, can earn nothing, and need neither a merchant nor an order, so neither
    resolution nor sorting nor the engine ever sees them. Refunds and chargebacks always stay:
    they claw back by their original's txn_id.

    The rows that can earn stay in memory while they fit in one chunk. Beyond that, each
    chunk is sorted and written as a run (uncompressed Arrow IPC, several times faster than
    Parquet) and the runs are merged as they are read (`Staged.chunks`), so memory stays near
    two chunks whatever the file's size. Repeated txn_ids are found by a 64-bit hash of every
    txn_id kept in memory (16 bytes a row) and confirmed by the txn_ids themselves.

    `on_accepted` is given each chunk's rows that can earn, in file order, while the next
    chunk is read: a run resolves their descriptors then, on the core staging leaves free."""
    counts = Counts()
    held: list[pl.DataFrame] = []
    held_rows = 0
    runs: list[Path] = []
    others: list[Path] = []
    hashes: list[pl.DataFrame] = []
    with quarantine.open("w", encoding="utf-8", newline="") as bad:
        bad.write("line,reason,raw\n")
        chunks = feed.read_feed(path, chunk_rows=chunk_rows, workers=STAGING_WORKERS)
        for chunk in threads.ahead(chunks, "stage"):
            counts.quarantined += chunk.quarantined.height
            counts.rows_read += chunk.rows
            count_reasons(counts.reasons, chunk.quarantined)
            if chunk.quarantined.height:
                chunk.quarantined.write_csv(bad, include_header=False)
            accepted = chunk.accepted.with_columns(txn_hash(pl.col("txn_id")))
            counts.accepted += accepted.height
            hashes.append(accepted.select("hash", "line"))
            if members is not None and accepted.height:
                flags = accepted.select(can_earn(members)).to_series()
                other = accepted.filter(~flags).select(OTHER.names())
                if other.height:
                    others.append(work / f"other-{len(others):06d}.arrow")
                    other.write_ipc(others[-1], compression="uncompressed")
                accepted = accepted.filter(flags)
            if accepted.height:
                on_accepted(accepted)
                held.append(accepted)
                held_rows += accepted.height
            if runs or held_rows > chunk_rows:
                for frame in held:
                    runs.append(work / f"run-{len(runs):06d}.arrow")
                    frame.sort(ORDER).write_ipc(runs[-1], compression="uncompressed")
                held = []
            on_rows(chunk.rows)
    dropped = _later_rows_of_repeated_ids(held, runs + others, hashes)
    other_rows = _rows(others, without=dropped)
    if not runs:
        everything = pl.concat(held) if held else frames.empty(frames.TRANSACTIONS)
        if len(dropped):
            everything = everything.filter(~pl.col("line").is_in(dropped.implode()))
        frame = everything.select(frames.TRANSACTIONS.names()).sort(ORDER)
        staged = Staged(frame.height + other_rows, frame=frame, dropped_lines=dropped)
    else:
        staged = Staged(counts.accepted - len(dropped), runs=runs, dropped_lines=dropped)
    staged.others, staged.other_rows = others, other_rows
    counts.duplicates = counts.accepted - staged.rows
    counts.accepted = staged.rows
    return staged, counts


def _rows(files: list[Path], *, without: pl.Series) -> int:
    if not files:
        return 0
    kept = pl.scan_ipc(files).filter(~pl.col("line").is_in(without.implode()))
    return int(kept.select(pl.len()).collect().item())


def _later_rows_of_repeated_ids(
    held: list[pl.DataFrame], files: list[Path], hashes: list[pl.DataFrame]
) -> pl.Series:
    """The lines of every row whose txn_id came earlier in the file. Equal hashes sit side by
    side once sorted; only the rows whose hash repeats are looked at, by their txn_ids."""
    if not hashes:
        return pl.Series("line", [], pl.Int64())
    ordered = pl.concat(hashes).get_column("hash").sort()
    repeated = ordered.filter(ordered.shift(1) == ordered).unique()
    if not len(repeated):
        return pl.Series("line", [], pl.Int64())
    suspect = pl.col("hash").is_in(repeated.implode())
    parts = [frame.lazy() for frame in held]
    if files:
        parts.append(pl.scan_ipc(files))
    candidates = (
        pl.concat([part.select("txn_id", "line", "hash") for part in parts])
        .filter(suspect)
        .collect()
        .sort("line")
    )
    return candidates.filter(~pl.col("txn_id").is_first_distinct()).get_column("line")


def count_reasons(reasons: dict[str, int], quarantined: pl.DataFrame) -> None:
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
