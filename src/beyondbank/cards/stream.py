"""A card feed matched in memory, start to finish, against one programme: what the file earns.

Staging, resolution and matching overlap: a worker thread reads, validates and splits the next
chunk of the file and resolves its merchants while this thread matches rows already known to
come first. A clearing file is (nearly) in time order, and a first pass over its txn_time
column alone tells, for every chunk, the earliest instant any later chunk holds (its floor):
rows before a chunk's floor can be matched as soon as that chunk is read, because nothing still
unread can come before them. A file too far out of order to be held that way is staged whole
and merged from sorted runs, as a database run stages it (`pipeline.stage`).

Nothing is posted and nothing is recorded as seen: that is the database run's work
(`service.run_file`), which shares the staging, the resolver and the engine. The benchmark of
the card pipeline (`bench/cards/pipeline.py`) runs this, so what is measured is what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import polars as pl

from beyondbank.cards import engine, feed, frames, pipeline
from beyondbank.cards.frames import Outcome, Programme, State
from beyondbank.cards.resolution import Resolver
from beyondbank.core import threads

# The whole seconds of an instant as the feed writes it: every accepted txn_time starts so.
SECOND = "%Y-%m-%dT%H:%M:%S"
_SECOND_WIDTH = 19
# A file is streamed when no step holds back more than this many chunks' rows.
MAX_HELD_CHUNKS = 3
# Rows released for matching wait until there are this share of the file's rows (or the file
# ends), up to BATCH_ROWS: the engine's cost per batch is paid fewer times in a large file,
# while a small one still starts matching early.
BATCH_SHARE = 25
BATCH_ROWS = 400_000


@dataclass(frozen=True)
class Prescan:
    """What a first pass over a Parquet feed's txn_id and txn_time columns tells.

    `floors[k]`: no row after chunk k has an instant earlier than this (None after the last
    chunk). `suspects`: the hashes of the txn_ids that occur more than once, the only rows
    that can be duplicates."""

    floors: list[datetime | None]
    suspects: pl.Series
    streamable: bool
    rows: int = 0


@dataclass
class Result:
    """What a run in memory read, matched and wrote, and where a next file would start from."""

    counts: pipeline.Counts
    streamed: bool
    set_aside: int
    matched: int
    rewards: int
    batches: int
    programme: Programme
    memory: _Memory

    def state(self) -> State:
        """The state a next file would start from (built on request: at 100M rows a day's
        grants alone are millions of rows)."""
        return self.memory.state()


def prescan(path: Path, chunk_rows: int) -> Prescan | None:
    """The floors and suspects of a Parquet feed, read a chunk at a time (None for CSV, whose
    columns cannot be read without parsing every line)."""
    if path.suffix.lower() != ".parquet":
        return None
    scan = pl.scan_parquet(path)
    schema = scan.collect_schema()
    if any(c not in schema for c in ("txn_id", "txn_time")):
        return None  # not a feed: the reader says so precisely
    total = int(scan.select(pl.len()).collect().item())
    # A row whose text does not start with a real second is quarantined by the time rule.
    second = (
        feed.as_text("txn_time", schema["txn_time"])
        .str.slice(0, _SECOND_WIDTH)
        .str.strptime(frames.UTC_TIME, SECOND, strict=False)
    )
    txn_hash = pipeline.txn_hash(feed.as_text("txn_id", schema["txn_id"]))

    def read(offset: int) -> pl.DataFrame:
        return scan.slice(offset, chunk_rows).select(txn_hash, second=second).collect()

    lows: list[datetime | None] = []
    highs: list[datetime | None] = []
    hashes: list[pl.Series] = []
    offsets = range(0, total, chunk_rows)
    for part in threads.ordered_map(read, offsets, pipeline.STAGING_WORKERS, "prescan"):
        hashes.append(part.get_column("hash"))
        seconds = part.get_column("second")
        lows.append(seconds.min())  # type: ignore[arg-type]  # a datetime, or None
        highs.append(seconds.max())  # type: ignore[arg-type]
    floors = _floors(lows)
    ordered = pl.concat(hashes).sort() if hashes else pl.Series("hash", [], pl.UInt64())
    suspects = ordered.filter(ordered.shift(1) == ordered).unique()
    held = _most_held(lows, highs, floors, chunk_rows, total)
    return Prescan(floors, suspects, held <= MAX_HELD_CHUNKS * chunk_rows, total)


def _floors(lows: list[datetime | None]) -> list[datetime | None]:
    """Per chunk, the least second of every later chunk (None after the last chunk)."""
    floors: list[datetime | None] = [None] * len(lows)
    least = datetime.max.replace(tzinfo=UTC)
    for k in range(len(lows) - 1, 0, -1):
        low = lows[k]
        if low is not None and low < least:
            least = low
        floors[k - 1] = least
    return floors


def _most_held(
    lows: list[datetime | None],
    highs: list[datetime | None],
    floors: list[datetime | None],
    chunk_rows: int,
    total: int,
) -> int:
    """An upper bound of the rows held back at any step: every chunk read so far that has a
    row at or after the step's floor counts whole."""
    most = 0
    for k, floor in enumerate(floors):
        if floor is None:
            break
        held = sum(
            min(chunk_rows, total - j * chunk_rows)
            for j in range(k + 1)
            if (high := highs[j]) is not None and high >= floor
        )
        most = max(most, held)
    return most


@dataclass
class _Part:
    """One chunk of the file, staged: what can earn (first row of each txn_id), its merchants
    resolved, in file order."""

    rows: int
    can_earn: pl.DataFrame
    set_aside: int


class _Matcher:
    """Matches batches in time order, threading the programme and what earlier batches left
    from one to the next; a worker thread writes each batch's rewards meanwhile."""

    def __init__(
        self,
        programme: Programme,
        state: State,
        resolver: Resolver,
        rewards: tuple[Path, Path],
        parts: Path,
        on_batch: Callable[[pl.DataFrame, Outcome], None],
    ) -> None:
        self.programme, self.resolver = programme, resolver
        self.memory = _Memory(programme, state)
        self.on_batch = on_batch
        self.matched = self.rewards = self.batches = 0
        self._parquet, self._parts = rewards[0], parts
        self._csv = rewards[1].open("wb")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewards")
        self._written: list[Future[None]] = []

    def add(self, resolved: pl.DataFrame) -> None:
        """Match a batch of resolved rows (frames.RESOLVED) that come after every earlier one."""
        outcome = engine.match(resolved, self.programme, self.memory.state_for(resolved))
        # Budgets and quantities move on; the counters, purchases and grants go to memory.
        self.programme = engine.advance(self.programme, State(), outcome)[0]
        self.memory.remember(outcome)
        self._written.append(self._writer.submit(self._write, outcome.rewards, self.batches))
        self.batches += 1
        self.matched += resolved.height
        self.rewards += outcome.rewards.height
        self.on_batch(resolved, outcome)

    def _write(self, rewards: pl.DataFrame, index: int) -> None:
        # The CSV grows batch by batch; the Parquet file is written once from the parts, so
        # that it is one file with row groups of a useful size.
        rewards.write_csv(self._csv, include_header=index == 0)
        rewards.write_ipc(self._parts / f"{index:06d}.arrow", compression="uncompressed")

    def close(self, *, complete: bool) -> None:
        """Wait for the writes; a complete run also writes the Parquet file (a failed one
        leaves only what the CSV file had got)."""
        self._writer.shutdown(wait=True)
        try:
            for written in self._written:
                written.result()
            if complete and not self.batches:
                frames.empty(frames.REWARDS).write_csv(self._csv)
        finally:
            self._csv.close()
        if not complete:
            return
        if self.batches:
            pl.scan_ipc(self._parts / "*.arrow").sink_parquet(self._parquet)
        else:
            frames.empty(frames.REWARDS).write_parquet(self._parquet)


def run(
    path: Path,
    work: Path,
    quarantine: Path,
    rewards: tuple[Path, Path],
    *,
    programme: Programme,
    resolver: Resolver,
    state: State | None = None,
    chunk_rows: int = 500_000,
    batch_rows: int | None = None,
    on_rows: Callable[[int], None] = lambda n: None,
    on_batch: Callable[[pl.DataFrame, Outcome], None] = lambda resolved, outcome: None,
) -> Result:
    """Match a feed file against a programme in memory: the quarantine file, and the rewards
    file as Parquet and CSV (`rewards`), one row per grant or clawback. The file is read
    `chunk_rows` at a time; rows are matched in batches of at least `batch_rows` (by default
    a 25th of the file, at most BATCH_ROWS). `on_batch` sees each batch as resolved and what
    it earned, in time order."""
    members = pipeline.token_hashes(programme.cards.get_column("card_token"))
    parts = work / "rewards"
    parts.mkdir()
    matcher = _Matcher(programme, state or State(), resolver, rewards, parts, on_batch)
    streamed = False
    try:
        if path.suffix.lower() == ".parquet":
            streamed, counts, set_aside = _streamed(
                path, quarantine, matcher, members, chunk_rows, batch_rows, on_rows
            )
        if not streamed:
            counts, set_aside = _staged(
                path, work, quarantine, matcher, members, chunk_rows, on_rows
            )
    except BaseException:
        matcher.close(complete=False)
        raise
    matcher.close(complete=True)
    return Result(
        counts=counts,
        streamed=streamed,
        set_aside=set_aside,
        matched=matcher.matched,
        rewards=matcher.rewards,
        batches=matcher.batches,
        memory=matcher.memory,
        programme=matcher.programme,
    )


def _staged(
    path: Path,
    work: Path,
    quarantine: Path,
    matcher: _Matcher,
    members: pl.Series,
    chunk_rows: int,
    on_rows: Callable[[int], None],
) -> tuple[pipeline.Counts, int]:
    """A file out of time order: staged whole (sorted runs on disk), then matched in order."""
    staged, counts = pipeline.stage(
        path,
        work,
        quarantine,
        chunk_rows=chunk_rows,
        members=members,
        on_rows=on_rows,
        on_accepted=matcher.resolver.learn,
    )
    for chunk in staged.chunks(chunk_rows):
        matcher.add(matcher.resolver.resolve(chunk).resolved)
    return counts, staged.other_rows


def _streamed(
    path: Path,
    quarantine: Path,
    matcher: _Matcher,
    members: pl.Series,
    chunk_rows: int,
    batch_rows: int | None,
    on_rows: Callable[[int], None],
) -> tuple[bool, pipeline.Counts, int]:
    """A file in time order: each chunk's rows before its floor are matched while the next
    chunk is read; the rest wait for a later chunk's floor. The prescan runs while the first
    chunk is read; a file it finds too far out of order is left at once (False)."""
    counts = pipeline.Counts()
    held = frames.empty(frames.RESOLVED)
    set_aside = 0
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="prescan") as ahead,
        quarantine.open("w", encoding="utf-8", newline="") as bad,
    ):
        scanned = ahead.submit(prescan, path, chunk_rows)
        bad.write("line,reason,raw\n")
        chunks = _parts(path, chunk_rows, members, scanned, bad, counts, matcher.resolver)
        parts = threads.ahead(chunks, "stage")
        waiting: list[pl.DataFrame] = []  # released, in order, not matched yet
        try:
            for index, part in enumerate(parts):
                scan = scanned.result()
                if scan is None or not scan.streamable:
                    return False, counts, 0
                set_aside += part.set_aside
                held = pl.concat([held, part.can_earn]) if held.height else part.can_earn
                ready, held = _release(held, scan.floors[index])
                waiting.append(ready)
                if sum(w.height for w in waiting) >= (batch_rows or _batch_rows(scan.rows)):
                    matcher.add(pl.concat(waiting))
                    waiting = []
                on_rows(part.rows)
        finally:
            parts.close()
        scan = scanned.result()
        if scan is None or not scan.streamable:  # found before the first chunk was through
            return False, counts, 0
    last = pl.concat([*waiting, held.sort(pipeline.ORDER)])
    if last.height:
        matcher.add(last)
    return True, counts, set_aside


def _batch_rows(rows: int) -> int:
    return max(min(rows // BATCH_SHARE, BATCH_ROWS), 1)


def _parts(
    path: Path,
    chunk_rows: int,
    members: pl.Series,
    scanned: Future[Prescan | None],
    bad: IO[str],
    counts: pipeline.Counts,
    resolver: Resolver,
) -> Iterator[_Part]:
    """The file's chunks staged in file order: validated (bad rows to the quarantine file),
    later rows of a txn_id dropped, purchases no member's card made counted and set aside,
    and the merchants of what is left resolved (a row's merchant does not depend on order)."""
    seen: dict[int, set[str]] = {}
    for chunk in feed.read_feed(path, chunk_rows=chunk_rows, workers=pipeline.STAGING_WORKERS):
        counts.rows_read += chunk.rows
        counts.quarantined += chunk.quarantined.height
        pipeline.count_reasons(counts.reasons, chunk.quarantined)
        if chunk.quarantined.height:
            chunk.quarantined.write_csv(bad, include_header=False)
        scan = scanned.result()
        if scan is None or not scan.streamable:
            return
        accepted, duplicates = _first_rows(chunk.accepted, scan.suspects, seen)
        counts.accepted += accepted.height
        counts.duplicates += duplicates
        flags = accepted.select(pipeline.can_earn(members)).to_series()
        can_earn = resolver.resolve(accepted.filter(flags)).resolved
        yield _Part(chunk.rows, can_earn, accepted.height - can_earn.height)


def _first_rows(
    accepted: pl.DataFrame, suspects: pl.Series, seen: dict[int, set[str]]
) -> tuple[pl.DataFrame, int]:
    """The rows whose txn_id no earlier line had, and how many did. Only rows whose hash the
    prescan saw twice are looked at, by their txn_ids (`seen` carries them across chunks)."""
    if not len(suspects):
        return accepted, 0
    hashes = accepted.select(pipeline.txn_hash(pl.col("txn_id"))).to_series()
    suspect = hashes.is_in(suspects.implode())
    if not suspect.any():
        return accepted, 0
    later: list[int] = []
    rows = (
        accepted.filter(suspect).select("line", "txn_id").with_columns(hash=hashes.filter(suspect))
    )
    for line, txn_id, key in rows.iter_rows():
        earlier = seen.setdefault(key, set())
        if txn_id in earlier:
            later.append(line)
        else:
            earlier.add(txn_id)
    if not later:
        return accepted, 0
    return accepted.filter(~pl.col("line").is_in(later)), len(later)


def _release(held: pl.DataFrame, floor: datetime | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The held rows that come before `floor`, in (txn_time, txn_id) order, and the rest."""
    if floor is None:
        return held.sort(pipeline.ORDER), frames.empty(frames.RESOLVED)
    before = held.select(pl.col("txn_time") < floor).to_series()
    return held.filter(before).sort(pipeline.ORDER), held.filter(~before)


# -- the state a run keeps in memory ---------------------------------------------------------------


class _Memory:
    """What earlier batches left that a later batch's rules may read: grants (any refund may
    name one), member counters of benefits with a member limit, and purchases at merchants
    with a new-to-merchant benefit.

    Kept as the batches' frames, appended and never copied whole: a batch reads them as one
    chunked frame and filters it (on the txn_id's 64-bit hash, for grants). Merging them
    again after every batch made a day of 100M transactions slow down as its state grew. A
    grant changed by a clawback is appended again; the latest row of a txn_id is its grant."""

    def __init__(self, programme: Programme, state: State) -> None:
        benefits = programme.benefits
        self.limited = benefits.filter(pl.col("member_limit").is_not_null())["benefit_id"]
        self.newcomers = benefits.filter(pl.col("new_to_merchant_days").is_not_null())[
            "merchant_id"
        ]
        self.grants: list[pl.DataFrame] = []
        self.usage: list[pl.DataFrame] = []
        self.purchases: list[pl.DataFrame] = []
        self._add(state.grants, state.usage, state.prior_purchases)

    def state_for(self, batch: pl.DataFrame) -> State:
        """The state with only the grants the batch's refunds and chargebacks name."""
        originals = batch.select(pipeline.txn_hash(pl.col("original_txn_id").drop_nulls()))
        named = _chunked(self.grants, _GRANTS).filter(
            pl.col("hash").is_in(originals.to_series().implode())
        )
        return State(
            usage=_chunked(self.usage, frames.USAGE),
            prior_purchases=_chunked(self.purchases, frames.PRIOR_PURCHASES),
            grants=named.unique("txn_id", keep="last", maintain_order=True).drop("hash"),
        )

    def remember(self, outcome: Outcome) -> None:
        self._add(outcome.grants, outcome.usage_added, outcome.purchases)

    def state(self) -> State:
        """Everything remembered, as a later run would start from it."""
        usage = _chunked(self.usage, frames.USAGE)
        return State(
            usage=usage.group_by(engine.USAGE_KEY, maintain_order=True).agg(pl.col("uses").sum()),
            prior_purchases=_chunked(self.purchases, frames.PRIOR_PURCHASES).rechunk(),
            grants=_chunked(self.grants, _GRANTS)
            .unique("txn_id", keep="last", maintain_order=True)
            .drop("hash"),
        )

    def _add(self, grants: pl.DataFrame, usage: pl.DataFrame, purchases: pl.DataFrame) -> None:
        _append(self.grants, grants.with_columns(pipeline.txn_hash(pl.col("txn_id"))))
        _append(self.usage, usage.filter(pl.col("benefit_id").is_in(self.limited.implode())))
        _append(
            self.purchases,
            purchases.filter(pl.col("merchant_id").is_in(self.newcomers.implode())),
        )


# Frames of many chunks make some operations slower per chunk: past this many parts, they are
# merged into one (over a day of 200 batches, each row is copied a few times).
_MAX_PARTS = 32


def _append(parts: list[pl.DataFrame], frame: pl.DataFrame) -> None:
    if not frame.height:
        return
    parts.append(frame)
    if len(parts) > _MAX_PARTS:
        parts[:] = [pl.concat(parts)]


_GRANTS = pl.Schema({**frames.GRANTS, "hash": pl.UInt64()})


def _chunked(parts: list[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    """The parts as one frame without copying them (each stays a chunk of its own)."""
    if not parts:
        return frames.empty(schema)
    return pl.concat(parts, rechunk=False)
