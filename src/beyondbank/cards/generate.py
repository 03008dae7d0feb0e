"""Synthetic card clearing feeds for the alliance in the database: realistic, deterministic, fast.

`generate_feed` yields batches of feed rows in text form (frames.FEED_COLUMNS, all strings,
as a file holds them) and `write_feed` streams them to CSV or Parquet. The assumptions behind
the content (shares, amounts, hours, noise, bad rows) are in docs/card-feed.md.

Randomness is counter-based: every random number is the hash of (stream, global row number)
under the seed, so each batch is computed in columns with Polars instead of row by row, and a
seed always gives the same file (for the Polars version the lock file pins). Python's `random`
is used only for the small per-merchant pools (names, terminal ids, descriptor variants).
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from polars.io.plugins import register_io_source
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from beyondbank.cards import descriptors, feed, frames

# -- the world the feed is generated for ------------------------------------------------------

# One row per alliance merchant location (a merchant with three shops has three rows).
WORLD_MERCHANTS = pl.Schema(
    {
        "merchant_id": pl.Int64(),
        "location_id": pl.Int64(),
        "trading_name": pl.String(),
        "mcc": pl.String(),
        "city": pl.String(),
        "country": pl.String(),  # ISO 3166-1 alpha-2
        "timezone": pl.String(),  # IANA
    }
)
# The terminals registered for those locations (a null terminal_id registers the whole DE 42).
WORLD_TERMINALS = pl.Schema(
    {"location_id": pl.Int64(), "acquirer_merchant_id": pl.String(), "terminal_id": pl.String()}
)
# Members' linked card tokens and when each link started.
WORLD_CARDS = pl.Schema({"card_token": pl.String(), "linked_at": frames.UTC_TIME})


@dataclass(frozen=True)
class World:
    """What the generator needs to know of the programme, as plain frames (filled from the database)."""

    merchants: pl.DataFrame  # WORLD_MERCHANTS
    terminals: pl.DataFrame  # WORLD_TERMINALS
    cards: pl.DataFrame  # WORLD_CARDS
    currency: str = "GBP"
    country: str = "GB"  # where the non-alliance merchants trade
    timezone: str = "Europe/London"  # their time zone

    def __post_init__(self) -> None:
        object.__setattr__(self, "merchants", _world_frame(self.merchants, WORLD_MERCHANTS))
        object.__setattr__(self, "terminals", _world_frame(self.terminals, WORLD_TERMINALS))
        object.__setattr__(self, "cards", _world_frame(self.cards, WORLD_CARDS))


def _world_frame(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The frame in the schema's columns and types. Whatever a database driver returns is
    taken as long as it converts exactly: other integer widths, other time units, and naive
    times, which are UTC by the platform's convention (SQLite returns them so)."""
    missing = [c for c in schema.names() if c not in frame.columns]
    if missing:
        raise ValueError(f"World: missing columns {missing} (expected {schema.names()})")
    columns = []
    for name, dtype in schema.items():
        column = pl.col(name)
        given = frame.schema[name]
        if isinstance(dtype, pl.Datetime) and isinstance(given, pl.Datetime):
            column = (
                column.dt.replace_time_zone("UTC")
                if given.time_zone is None
                else column.dt.convert_time_zone("UTC")
            )
        columns.append(column.cast(dtype, strict=True).alias(name))
    return frame.select(columns)


@dataclass(frozen=True)
class FeedMix:
    """The shares the generator aims at; each is a probability per row, so counts vary slightly."""

    member_share: float = 0.35  # rows paid with a member's linked card
    member_at_alliance: float = 0.55  # of member rows, at an alliance merchant
    non_member_at_alliance: float = 0.06  # of non-member rows, at an alliance merchant
    refund_share: float = 0.03
    chargeback_share: float = 0.005
    duplicate_share: float = 0.0002  # exact copies of a row, as feeds resend them
    bad_share: float = 0.001  # rows broken on purpose, one quarantine reason each
    unregistered_terminal_share: float = 0.10  # alliance rows from a terminal not on file
    before_link_share: float = 0.02  # member-card rows drawn regardless of the link's start
    non_alliance_merchants: int = 4_000
    non_member_cards: int | None = None  # default: one card per 25 transactions, 1,000..2,000,000

    def __post_init__(self) -> None:
        shares = (
            self.member_share,
            self.member_at_alliance,
            self.non_member_at_alliance,
            self.refund_share + self.chargeback_share,
            self.duplicate_share,
            self.bad_share,
            self.unregistered_terminal_share,
            self.before_link_share,
        )
        if not all(0.0 <= s <= 1.0 for s in shares):
            raise ValueError("shares must be within 0..1")
        if self.non_alliance_merchants < 1:
            raise ValueError("the generator needs at least one non-alliance merchant")


# -- merchant categories ------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A group of MCCs that share a spending pattern: amount distribution and hours of trade."""

    name: str
    share: float  # of all card transactions
    mccs: tuple[str, ...]
    median_minor: int  # log-normal amount: median and sigma
    sigma: float
    hours: tuple[float, ...]  # relative weight of each local hour 0..23


def _hours(
    *peaks: tuple[int, int, float], base: float = 0.0, night: float = 0.02
) -> tuple[float, ...]:
    weights = [night if h < 6 else base for h in range(24)]
    for first, last, weight in peaks:
        for h in range(first, last + 1):
            weights[h] += weight
    return tuple(weights)


FAMILIES = (
    Family("grocery", 0.28, ("5411", "5499", "5462", "5441", "5921"), 2_200, 0.85,
           _hours((8, 20, 1.0), (17, 19, 1.2), (12, 13, 0.5), base=0.1)),
    Family("quick service", 0.14, ("5814",), 750, 0.5,
           _hours((7, 9, 1.5), (12, 13, 2.5), (14, 17, 0.6), (18, 21, 0.7), base=0.1)),
    Family("restaurant", 0.09, ("5812",), 2_800, 0.6,
           _hours((12, 14, 2.0), (18, 21, 3.0), (15, 17, 0.3), base=0.05)),
    Family("bar", 0.06, ("5813",), 1_800, 0.7,
           _hours((12, 14, 0.6), (17, 19, 1.2), (20, 23, 2.5), (0, 1, 0.6), base=0.05)),
    Family("fuel", 0.08, ("5541", "5542"), 4_500, 0.4,
           _hours((7, 9, 2.0), (10, 15, 0.8), (16, 19, 2.0), (20, 22, 0.5), base=0.2)),
    Family("retail", 0.20, ("5311", "5651", "5661", "5732", "5942", "5944", "5945", "5992",
                            "5995", "5912", "5251", "5261", "5999"), 2_500, 1.0,
           _hours((9, 18, 1.0), (12, 16, 0.8), (19, 20, 0.3), base=0.05, night=0.01)),
    Family("services", 0.06, ("7230", "7298", "8043", "7216", "7997", "7542"), 3_500, 0.7,
           _hours((9, 18, 1.0), (17, 19, 0.5), base=0.02, night=0.0)),
    Family("transport", 0.07, ("4111", "4121", "4131"), 400, 0.6,
           _hours((7, 9, 2.5), (17, 19, 2.0), (10, 16, 0.6), (22, 23, 0.8), base=0.2, night=0.1)),
    Family("travel", 0.02, ("4511", "7011"), 18_000, 0.9, _hours((6, 23, 1.0))),
)  # fmt: skip

_FAMILY_OF_MCC = {mcc: i for i, family in enumerate(FAMILIES) for mcc in family.mccs}
_RETAIL = next(i for i, f in enumerate(FAMILIES) if f.name == "retail")

# Names for the categories descriptors.business_name has no trade words for.
_TRADE_WORDS = {
    "5311": ("Department Store", "Stores"),
    "5541": ("Service Station", "Fuel", "Filling Station"),
    "5542": ("Fuel", "Petrol", "Pay at Pump"),
    "5999": ("Gifts", "General Store", "Homeware"),
    "4111": ("Buses", "Tramways", "Rail"),
    "4121": ("Taxis", "Cars", "Private Hire"),
    "4131": ("Coaches", "Bus Company"),
    "4511": ("Airways", "Air"),
    "7011": ("Hotel", "Guest House", "Inn"),
}


def family_of(mcc: str) -> int:
    """The family index of an MCC: listed ones by name, the rest by the ISO 18245 ranges."""
    if mcc in _FAMILY_OF_MCC:
        return _FAMILY_OF_MCC[mcc]
    code = int(mcc) if mcc.isdigit() else 5999
    by_range = (
        (3000, 3999, "travel"), (4000, 4199, "transport"), (4400, 4799, "travel"),
        (5400, 5499, "grocery"), (5500, 5599, "fuel"), (5810, 5812, "restaurant"),
        (5813, 5813, "bar"), (5814, 5814, "quick service"), (7000, 7099, "travel"),
        (7200, 8999, "services"),
    )  # fmt: skip
    for first, last, name in by_range:
        if first <= code <= last:
            return next(i for i, f in enumerate(FAMILIES) if f.name == name)
    return _RETAIL


# -- bad rows -----------------------------------------------------------------------------------

# CSV-only faults travel through the frames as private-use characters that write_feed turns
# into the real thing: an extra unquoted field separator, or a byte that is not UTF-8. In
# Parquet, which cannot hold either, both become U+FFFD (quarantined as not valid UTF-8).
FIELD_BREAK = "\ue000"
BAD_BYTE = "\ue001"

# fault name -> the columns it changes: (column, new text from (good text, the row's txn_id)).
_Change = Callable[[str, str], str]
_FAULTS: dict[str, tuple[tuple[str, _Change], ...]] = {
    **{f"missing {c}": ((c, lambda good, txn: ""),) for c in feed.REQUIRED},
    "unknown currency": (("currency", lambda good, txn: "XYZ"),),
    "points currency": (("currency", lambda good, txn: "PTS"),),
    "negative amount": (("amount_minor", lambda good, txn: "-" + good),),
    "zero amount": (("amount_minor", lambda good, txn: "0"),),
    "decimal amount": (("amount_minor", lambda good, txn: good + ".50"),),
    "amount not a number": (("amount_minor", lambda good, txn: good + "O"),),
    "unknown type": (("type", lambda good, txn: "payment"),),
    "refund without original": (
        ("type", lambda g, t: "refund"),
        ("original_txn_id", lambda g, t: ""),
    ),
    "chargeback without original": (
        ("type", lambda g, t: "chargeback"),
        ("original_txn_id", lambda g, t: ""),
    ),
    "purchase with original": (
        ("type", lambda g, t: "purchase"),
        ("original_txn_id", lambda g, t: t + "x"),
    ),
    "short mcc": (("mcc", lambda good, txn: good[:3]),),
    "letters in mcc": (("mcc", lambda good, txn: good[:2] + "A" + good[3:]),),
    "long DE 42": (("acquirer_merchant_id", lambda good, txn: good.ljust(16, "9")),),
    "long DE 41": (("terminal_id", lambda good, txn: good.ljust(9, "9")),),
    "long DE 43": (("acceptor_name_location", lambda good, txn: good.ljust(40) + " X"),),
    "malformed time": (
        ("txn_time", lambda good, txn: good[8:10] + "/" + good[5:7] + "/" + good[:4]),
    ),
    "naive time": (("txn_time", lambda good, txn: good.removesuffix("Z")),),
    "non-UTC time": (("txn_time", lambda good, txn: good.removesuffix("Z") + "+01:00"),),
    "impossible date": (("txn_time", lambda good, txn: good[:5] + "02-30" + good[10:]),),
    "extra field": (("card_token", lambda good, txn: good + FIELD_BREAK + "X"),),
    "not UTF-8": (("acceptor_name_location", lambda good, txn: BAD_BYTE + good[1:]),),
}
FAULTS = tuple(_FAULTS)
# A batch's rows carry their instant under this name until the file's rows are in time order.
_AT = "_at"
# The columns where the CSV-only faults put their markers (see "extra field", "not UTF-8").
_MARKED_COLUMNS = ("card_token", "acceptor_name_location")


def expected_reason(fault: str, *, parquet: bool = False) -> str:
    """The reason feed.read_feed gives a row generated with this fault."""
    if fault.startswith("missing "):
        return feed.missing(fault.removeprefix("missing "))
    if fault == "extra field":
        return feed.NOT_UTF8 if parquet else feed.wrong_field_count(feed.FIELD_COUNT + 1)
    reasons = {
        "unknown currency": feed.UNKNOWN_CURRENCY,
        "points currency": feed.POINTS_CURRENCY,
        "negative amount": feed.AMOUNT_NEGATIVE,
        "zero amount": feed.AMOUNT_ZERO,
        "decimal amount": feed.AMOUNT_DECIMAL,
        "amount not a number": feed.AMOUNT_NOT_A_NUMBER,
        "unknown type": feed.UNKNOWN_TYPE,
        "refund without original": feed.REFUND_WITHOUT_ORIGINAL,
        "chargeback without original": feed.CHARGEBACK_WITHOUT_ORIGINAL,
        "purchase with original": feed.PURCHASE_WITH_ORIGINAL,
        "short mcc": feed.BAD_MCC,
        "letters in mcc": feed.BAD_MCC,
        "long DE 42": feed.too_long("acquirer_merchant_id"),
        "long DE 41": feed.too_long("terminal_id"),
        "long DE 43": feed.too_long("acceptor_name_location"),
        "malformed time": feed.TIME_MALFORMED,
        "naive time": feed.TIME_NAIVE,
        "non-UTC time": feed.TIME_NOT_UTC,
        "impossible date": feed.TIME_INVALID,
        "not UTF-8": feed.NOT_UTF8,
    }
    return reasons[fault]


# -- random numbers in columns ------------------------------------------------------------------

_STREAMS = (
    "kind", "member", "alliance", "acceptor", "day", "hour", "second", "amount_a", "amount_b",
    "card", "any_card", "terminal", "unregistered", "new_acquirer", "variant", "original",
    "delay", "refund_size", "refund_fraction", "duplicate", "bad", "reference", "clean", "place",
)  # fmt: skip
_TWO_53 = 2.0**-53
_TWO_32 = 2.0**-32


class _Random:
    """Uniform [0, 1) columns: hash(row number) under a seed per (generator seed, stream)."""

    def __init__(self, seed: int) -> None:
        source = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
        self._seeds = {name: source.getrandbits(63) for name in _STREAMS}

    def uniform(self, stream: str, rows: pl.Series) -> pl.Series:
        bits = rows.hash(seed=self._seeds[stream]) // (1 << 11)
        return (bits.cast(pl.Float64()) * _TWO_53).rename(stream)

    def uniforms(self, rows: pl.Series, streams: Sequence[str]) -> dict[str, pl.Series]:
        """Two uniforms (32-bit resolution) per hash: the high and the low half of 64 bits."""
        found: dict[str, pl.Series] = {}
        for first, second in zip(streams[0::2], streams[1::2], strict=False):
            bits = rows.hash(seed=self._seeds[first])
            found[first] = ((bits // (1 << 32)).cast(pl.Float64()) * _TWO_32).rename(first)
            found[second] = ((bits % (1 << 32)).cast(pl.Float64()) * _TWO_32).rename(second)
        if len(streams) % 2:
            found[streams[-1]] = self.uniform(streams[-1], rows)
        return found

    def integers(self, stream: str, rows: pl.Series) -> pl.Series:
        return rows.hash(seed=self._seeds[stream]).rename(stream)


# -- the pools of merchants and cards -----------------------------------------------------------

_VARIANTS = 8  # descriptor variants per acceptor: 0 is the clean DE 43, the rest are noisy


@dataclass(frozen=True)
class _Acceptors:
    """Alliance locations first, then the invented non-alliance merchants, one row each."""

    table: pl.DataFrame  # family, timezone, weight
    terminals: pl.DataFrame  # acceptor, acquirer_merchant_id, terminal_id (the registered ones)
    first_terminal: pl.Series  # per acceptor, its first row in `terminals`
    terminal_count: pl.Series
    variants: pl.Series  # acceptor * _VARIANTS + v -> DE 43 text
    alliance: int  # how many of the acceptors are alliance locations

    @property
    def outsiders(self) -> int:
        return self.table.height - self.alliance


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _outsider_name(mcc: str, rng: random.Random) -> str:
    if mcc in descriptors.TRADES:
        return descriptors.business_name(mcc, rng)
    trade = rng.choice(_TRADE_WORDS.get(mcc, ("Shop",)))
    if rng.random() < 0.5:
        return f"{rng.choice(descriptors.SURNAMES)} {trade}"
    return f"{rng.choice(descriptors.PLACES)} {trade}"


def _acceptors(world: World, mix: FeedMix, seed: int) -> _Acceptors:
    rng = random.Random(seed * 7_919 + 1)  # noqa: S311 (synthetic data, not secrets)
    alliance = world.merchants
    cities = sorted(set(alliance.get_column("city").to_list())) or list(descriptors.CITIES[:8])
    names: list[str] = alliance.get_column("trading_name").to_list()
    mccs: list[str] = alliance.get_column("mcc").to_list()
    places: list[tuple[str, str]] = list(
        zip(
            alliance.get_column("city").to_list(),
            alliance.get_column("country").to_list(),
            strict=True,
        )
    )
    zones: list[str] = alliance.get_column("timezone").to_list()
    weights = [1.0] * alliance.height
    family_weights = [f.share for f in FAMILIES]
    for _ in range(mix.non_alliance_merchants):
        family = FAMILIES[rng.choices(range(len(FAMILIES)), family_weights)[0]]
        mcc = rng.choice(family.mccs)
        names.append(_outsider_name(mcc, rng))
        mccs.append(mcc)
        # Most outsiders trade in the alliance's towns: they are the alliance's competition.
        city = rng.choice(cities) if rng.random() < 0.7 else rng.choice(descriptors.CITIES)
        places.append((city, world.country))
        zones.append(world.timezone)
        weights.append(rng.lognormvariate(0.0, 1.0) * family.share / len(family.mccs))

    location_of = {loc: i for i, loc in enumerate(alliance.get_column("location_id").to_list())}
    registered = [
        (location_of[loc], acquirer, terminal)
        for loc, acquirer, terminal in world.terminals.iter_rows()
        if loc in location_of
    ]
    for index in range(alliance.height, len(names)):
        acquirer = _digits(rng, 15)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            registered.append((index, acquirer, "T" + _digits(rng, 7)))
    registered.sort(key=lambda t: t[0])
    terminals = pl.DataFrame(
        registered,
        schema={
            "acceptor": pl.Int64(),
            "acquirer_merchant_id": pl.String(),
            "terminal_id": pl.String(),
        },
        orient="row",
    )
    counts = terminals.group_by("acceptor").len()
    per_acceptor = (
        pl.DataFrame({"acceptor": pl.int_range(0, len(names), dtype=pl.Int64(), eager=True)})
        .join(counts, on="acceptor", how="left", maintain_order="left")
        .with_columns(count=pl.col("len").fill_null(0).cast(pl.Int64()))
        .with_columns(first=pl.col("count").cum_sum() - pl.col("count"))
    )
    variants: list[str] = []
    for name, (city, country) in zip(names, places, strict=True):
        variants.append(descriptors.acceptor_field(name, city, country))
        variants.extend(
            descriptors.noisy_descriptor(name, city, country, rng) for _ in range(_VARIANTS - 1)
        )
    table = pl.DataFrame(
        {
            "family": [family_of(m) for m in mccs],
            "mcc": mccs,
            "timezone": zones,
            "weight": weights,
        },
        schema={
            "family": pl.Int64(),
            "mcc": pl.String(),
            "timezone": pl.String(),
            "weight": pl.Float64(),
        },
    )
    return _Acceptors(
        table=table,
        terminals=terminals,
        first_terminal=per_acceptor.get_column("first"),
        terminal_count=per_acceptor.get_column("count"),
        variants=pl.Series("variants", variants, pl.String()),
        alliance=alliance.height,
    )


_BUCKETS = 1 << 20


def _chooser(weights: pl.Series) -> pl.Series:
    """Inverse CDF of the weights at 2^20 quantiles: index = table[floor(u * 2^20)].

    A lookup per row instead of a binary search; a choice whose weight is below one part in
    a million of the total is drawn at the nearest quantile's rate (at most one in a million).
    """
    if len(weights) == 0:
        return pl.Series("choice", [0], dtype=pl.Int64())
    cumulative = weights.cum_sum() / weights.sum()
    middles = (pl.int_range(0, _BUCKETS, eager=True).cast(pl.Float64()) + 0.5) / _BUCKETS
    index = cumulative.search_sorted(middles, side="right").cast(pl.Int64())
    return index.clip(0, len(weights) - 1).rename("choice")


def _pick(chooser: pl.Series, u: pl.Series) -> pl.Series:
    return chooser.gather((u * _BUCKETS).cast(pl.Int64()))


def _hour_table() -> pl.Series:
    """Per family, 1,024 quantiles of its hour-of-day distribution (family * 1024 + bucket)."""
    hours: list[int] = []
    for family in FAMILIES:
        total = sum(family.hours)
        cumulative = [sum(family.hours[: h + 1]) / total for h in range(24)]
        for bucket in range(1024):
            q = (bucket + 0.5) / 1024
            hours.append(next(h for h, c in enumerate(cumulative) if q <= c))
    return pl.Series("hour", hours, pl.Int64())


# -- generation ---------------------------------------------------------------------------------


def generate_feed(
    world: World,
    *,
    transactions: int,
    seed: int,
    start: datetime,
    days: int,
    bad_share: float | None = None,
    mix: FeedMix | None = None,
    batch_rows: int = 1_000_000,
    label_faults: bool = False,
) -> Iterator[pl.DataFrame]:
    """Batches of feed rows (FEED_COLUMNS as text), `transactions` rows in all, times in [start, start + days).

    The rows are in time order, as a clearing system writes a day's file; every refund and
    chargeback names a purchase earlier in the file and later in time. With `label_faults`,
    each batch also carries a `fault` column naming the fault of each deliberately bad row
    (null for the others).

    Each batch of `batch_rows` is drawn over the whole window, so a file of several batches is
    put in time order by a merge: the batches wait on disk (Arrow IPC, in a temporary folder)
    and are merged a slice of each at a time, so memory stays near two batches.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if transactions < 0 or days < 1 or batch_rows < 1:
        raise ValueError("transactions must be >= 0, days and batch_rows >= 1")
    chosen = mix or FeedMix()
    if bad_share is not None:
        chosen = FeedMix(**{**chosen.__dict__, "bad_share": bad_share})
    run = _Run(world, chosen, seed, start, days, transactions)
    if transactions <= batch_rows:
        batch = run.batch(0, transactions) if transactions else None
        if batch is not None:
            yield (batch if label_faults else batch.drop("fault")).drop(_AT)
        return
    with tempfile.TemporaryDirectory(prefix="feed-") as folder:
        runs: list[Path] = []
        for produced in range(0, transactions, batch_rows):
            runs.append(Path(folder) / f"{len(runs):06d}.arrow")
            batch = run.batch(produced, min(batch_rows, transactions - produced))
            batch.write_ipc(runs[-1], compression="uncompressed")
            del batch
        # Each batch is in time order; merged, ties keep the batches' order.
        merged = frames.merge_sorted_runs(runs, [_AT], max(batch_rows // len(runs), 1_000))
        for batch in frames.rebatched(merged, batch_rows):
            yield batch.drop(_AT) if label_faults else batch.drop(_AT, "fault")


class _Run:
    """The state one generated file carries from batch to batch: pools and recent purchases.

    A batch is built as numbers (indices into the pools, times, amounts) and turned into text
    only at the end, once it is in its final order, so sorting and copying stay cheap.
    """

    RECENT = 250_000  # purchases remembered for later refunds to name

    def __init__(
        self, world: World, mix: FeedMix, seed: int, start: datetime, days: int, transactions: int
    ) -> None:
        self.world = world
        self.mix = mix
        self.random = _Random(seed)
        self.start = start.astimezone(UTC).replace(microsecond=0)  # whole seconds, like the times
        self.end = self.start + timedelta(days=days)
        self.days = days
        self.acceptors = _acceptors(world, mix, seed)
        self.hours = _hour_table()
        self._offsets()
        weights = self.acceptors.table.get_column("weight")
        self.alliance_cdf = _chooser(weights.head(self.acceptors.alliance))
        self.outsider_cdf = _chooser(weights.tail(self.acceptors.outsiders))
        cards = world.cards.sort("linked_at", "card_token")
        self.members = cards.height
        self.linked_at = cards.get_column("linked_at")
        non_members = mix.non_member_cards or min(max(transactions // 25, 1_000), 2_000_000)
        numbers = pl.int_range(0, non_members, dtype=pl.UInt64(), eager=True)
        hashed = self.random.integers("any_card", numbers).cast(pl.String()).str.zfill(20)
        # Members' cards first, then the non-members' (whose tokens look alike: tok_ + 20).
        self.tokens = pl.concat([cards.get_column("card_token"), ("tok_" + hashed)])
        # Ids differ between seeds and start dates, so files generated apart never collide.
        ids = random.Random(f"{seed}:{self.start.isoformat()}")  # noqa: S311 (not secret)
        self.prefix = f"tx{ids.getrandbits(24):06x}"
        # Terminals and acquirer ids not on file, drawn from pools (ids made once, not per row).
        pool = pl.int_range(0, 1 << 16, dtype=pl.UInt64(), eager=True)
        self.fresh_terminals = "U" + (self.random.integers("place", pool) % 10**7).cast(
            pl.String()
        ).str.zfill(7)
        self.fresh_acquirers = (
            (self.random.integers("new_acquirer", pool) % 10**15).cast(pl.String()).str.zfill(15)
        )
        self.recent = pl.DataFrame(schema=_ROW_SCHEMA)
        self.faults_done = 0

    def _offsets(self) -> None:
        """UTC offset of each acceptor time zone at each local hour of the window."""
        local_start = self.start.replace(tzinfo=None, hour=0, minute=0, second=0)
        # Times are counted in seconds from local midnight of the start date, taken as UTC.
        self.local_start_epoch = int(local_start.replace(tzinfo=UTC).timestamp())
        self.start_epoch = int(self.start.timestamp())
        zones = sorted(set(self.acceptors.table.get_column("timezone").to_list()))
        self.acceptor_zone = self.acceptors.table.get_column("timezone").replace_strict(
            {zone: i for i, zone in enumerate(zones)}, return_dtype=pl.Int64()
        )
        offsets: list[int] = []
        for zone in zones:
            where = ZoneInfo(zone)
            for h in range(self.days * 24):
                # fold=0: an ambiguous hour reads as the earlier one; a skipped one keeps the
                # offset from before the change, so it lands an hour later in UTC.
                moment = (local_start + timedelta(hours=h)).replace(tzinfo=where)
                shift = moment.utcoffset()
                offsets.append(int(shift.total_seconds()) if shift is not None else 0)
        self.offsets = pl.Series("offset", offsets, dtype=pl.Int64())

    def batch(self, offset: int, size: int) -> pl.DataFrame:
        copies = round(size * self.mix.duplicate_share) if size > 1 else 0
        rows = pl.int_range(offset, offset + size - copies, dtype=pl.UInt64(), eager=True)
        u = self.random.uniforms(rows, _STREAMS)
        base = self._purchases(rows, u)
        # Returns replace only non-purchase rows, so this batch's purchases are known already.
        purchases = base.filter((pl.col("type") == _PURCHASE) & ~pl.col("bad"))
        base = self._returns(base, pl.concat([self.recent, purchases]), u)
        recent = [purchases] if purchases.height >= self.RECENT else [self.recent, purchases]
        self.recent = pl.concat(recent).tail(self.RECENT).rechunk()
        if copies:
            # Exact copies of good rows, as feeds resend lines; each lands right after its source.
            rank = pl.when(pl.col("bad")).then(2.0).otherwise(pl.lit(u["duplicate"]))
            sources = base.select(pl.int_range(pl.len()).bottom_k_by(rank, copies)).to_series()
            base = pl.concat([base, base[sources]])
        base = base.sort("time", "key", maintain_order=True)
        return self._break(self._text(base)).with_columns(base.get_column("time").alias(_AT))

    # -- purchases, as numbers --

    def _purchases(self, rows: pl.Series, u: dict[str, pl.Series]) -> pl.DataFrame:
        mix, acc = self.mix, self.acceptors
        member = (u["member"] < mix.member_share) & (self.members > 0)
        share = (
            pl.when(pl.lit(member))
            .then(mix.member_at_alliance)
            .otherwise(mix.non_member_at_alliance)
        )
        at_alliance = pl.select((pl.lit(u["alliance"]) < share) & (acc.alliance > 0)).to_series()
        outsider = _pick(self.outsider_cdf, u["acceptor"]) + acc.alliance
        insider = _pick(self.alliance_cdf, u["acceptor"]) if acc.alliance else outsider
        acceptor = pl.select(
            pl.when(pl.lit(at_alliance)).then(pl.lit(insider)).otherwise(pl.lit(outsider))
        ).to_series()
        family = acc.table.get_column("family").gather(acceptor)
        zones = self.acceptor_zone.gather(acceptor)
        time = self._times(family, zones, u)
        count = acc.terminal_count.gather(acceptor)
        chosen = acc.first_terminal.gather(acceptor) + (u["terminal"] * count).cast(pl.Int64())
        unregistered = at_alliance & (
            (u["unregistered"] < mix.unregistered_terminal_share) | (count == 0)
        )
        kind = u["kind"]
        frame = pl.DataFrame(
            {
                "key": rows.cast(pl.Int64()),
                "type": pl.select(
                    pl.when(pl.lit(kind) < mix.refund_share)
                    .then(_REFUND)
                    .when(pl.lit(kind) < mix.refund_share + mix.chargeback_share)
                    .then(_CHARGEBACK)
                    .otherwise(_PURCHASE)
                    .cast(pl.Int8())
                ).to_series(),
                "bad": u["bad"] < mix.bad_share,
                "acceptor": acceptor,
                "terminal": pl.select(pl.when(pl.lit(count) > 0).then(pl.lit(chosen))).to_series(),
                "unregistered": unregistered,
                "new_acquirer": u["new_acquirer"] < 0.5,
                "place_noise": self.random.integers("place", rows),
                # Unregistered terminals send whatever the acquirer set up, rarely the clean layout.
                "variant": pl.select(
                    pl.when(pl.lit(unregistered) | (pl.lit(u["clean"]) >= 0.9))
                    .then((pl.lit(u["variant"]) * (_VARIANTS - 1)).cast(pl.Int64()) + 1)
                    .otherwise(0)
                    + pl.lit(acceptor) * _VARIANTS
                ).to_series(),
                "card": self._cards(member, time, u),
                "time": time,
                "amount": self._amounts(family, u),
                "original": pl.Series([None] * len(rows), dtype=pl.Int64()),
            }
        )
        noise = self.random.integers("reference", rows)
        return frame.with_columns(ref_time=pl.col("time"), ref_noise=noise).select(
            _ROW_SCHEMA.names()
        )

    def _times(self, family: pl.Series, zones: pl.Series, u: dict[str, pl.Series]) -> pl.Series:
        """Local wall-clock times (a day, an hour by the family's pattern, a second) as UTC."""
        hour = self.hours.gather(family * 1024 + (u["hour"] * 1024).cast(pl.Int64()))
        day = (u["day"] * self.days).cast(pl.Int64())
        local = day * 86_400 + hour * 3_600 + (u["second"] * 3_600).cast(pl.Int64())
        # Offsets come from a small table (zone, local hour) -> seconds east of UTC, built
        # with zoneinfo, instead of converting a million datetimes zone by zone.
        hours = self.days * 24
        offset = self.offsets.gather(zones * hours + local // 3_600)
        # Seconds after `start`. Local dates run from start's date; whatever the zone's offset
        # or a start after midnight pushes out of [start, start + days) wraps round by whole
        # days, which keeps every row's local time of day.
        after = local - offset + (self.local_start_epoch - self.start_epoch)
        span = self.days * 86_400
        after = (after % span + span) % span
        micros = (after + self.start_epoch) * 1_000_000
        return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").rename("time")

    def _amounts(self, family: pl.Series, u: dict[str, pl.Series]) -> pl.Series:
        mu = pl.Series([math.log(f.median_minor) for f in FAMILIES]).gather(family)
        sigma = pl.Series([f.sigma for f in FAMILIES]).gather(family)
        # Box-Muller: a standard normal from two uniforms (1 - u keeps the logarithm finite).
        radius = (-2.0 * (1.0 - pl.lit(u["amount_a"])).log()).sqrt()
        z = pl.select(radius * (2 * math.pi * pl.lit(u["amount_b"])).cos()).to_series()
        amount = (mu + sigma * z).exp().round().cast(pl.Int64()).clip(1, 5_000_000)
        return amount.rename("amount")

    def _cards(self, member: pl.Series, time: pl.Series, u: dict[str, pl.Series]) -> pl.Series:
        """Index into self.tokens: a member's card among those linked by then, or a non-member's."""
        n = self.members
        others = len(self.tokens) - n
        other = n + (u["card"] * others).cast(pl.Int64()).clip(0, others - 1)
        if n == 0:
            return other
        # A few rows ignore the link date, so the engine also sees cards used before linking.
        linked = self.linked_at.search_sorted(time, side="right").cast(pl.Int64())
        anyone = (u["any_card"] < self.mix.before_link_share) | (linked == 0)
        limit = pl.select(pl.when(pl.lit(anyone)).then(n).otherwise(pl.lit(linked))).to_series()
        mine = (u["card"] * limit).cast(pl.Int64()).clip(0, n - 1)
        return pl.select(
            pl.when(pl.lit(member)).then(pl.lit(mine)).otherwise(pl.lit(other))
        ).to_series()

    # -- refunds and chargebacks --

    def _returns(
        self, base: pl.DataFrame, pool: pl.DataFrame, u: dict[str, pl.Series]
    ) -> pl.DataFrame:
        """Refund and chargeback rows become copies of earlier purchases, later in time."""
        pool = pool.filter(pl.col("time") < self.end - timedelta(seconds=2))
        is_return = pl.col("type") != _PURCHASE
        if pool.height == 0:
            return base.with_columns(type=pl.lit(_PURCHASE, pl.Int8()))
        position = base.get_column("key") - base.get_column("key").min()
        returns = base.with_columns(
            u_original=u["original"].gather(position),
            u_delay=u["delay"].gather(position),
            u_size=u["refund_size"].gather(position),
            u_part=u["refund_fraction"].gather(position),
        ).filter(is_return)
        index = (returns["u_original"] * pool.height).cast(pl.Int64()).clip(0, pool.height - 1)
        original = pool.select(pl.all().gather(index).name.prefix("o_"))
        joined = pl.concat([returns, original], how="horizontal")
        amount, part, size = pl.col("o_amount"), pl.col("u_part"), pl.col("u_size")
        # Refunds come hours to weeks later (exponential, mean three days), never past the window.
        wait = 3_600 + (-(1.0 - pl.col("u_delay")).log() * 259_200).cast(pl.Int64())
        later = pl.col("o_time") + pl.duration(seconds=wait)
        left = (pl.lit(self.end) - pl.col("o_time")).dt.total_seconds()
        halfway = pl.col("o_time") + pl.duration(seconds=left // 2)
        # Refunds: mostly the whole amount, some partial, a few more than the purchase (fees).
        refund = (
            pl.when(size < 0.75)
            .then(amount)
            .when(size < 0.95)
            .then((amount * (0.1 + 0.85 * part)).floor().cast(pl.Int64()).clip(1, None))
            .otherwise(amount + (amount * 0.3 * part).floor().cast(pl.Int64()) + 1)
        )
        chargeback = (
            pl.when(size < 0.93)
            .then(amount)
            .otherwise((amount * (0.2 + 0.7 * part)).floor().cast(pl.Int64()).clip(1, None))
        )
        chargeback_row = pl.col("type") == _CHARGEBACK
        made = joined.select(
            "key",
            "type",
            "bad",
            *(pl.col(f"o_{c}").alias(c) for c in _PLACE),
            time=pl.when(later < pl.lit(self.end))
            .then(later)
            .otherwise(halfway)
            .cast(frames.UTC_TIME),
            amount=pl.when(chargeback_row).then(chargeback).otherwise(refund),
            original="o_key",
            # A chargeback travels under the purchase's reference; a refund has its own.
            ref_time=pl.when(chargeback_row).then("o_ref_time").otherwise("time"),
            ref_noise=pl.when(chargeback_row).then("o_ref_noise").otherwise("ref_noise"),
        )
        # The refund's own time is only known now: a refund's reference is dated by it.
        made = made.with_columns(
            ref_time=pl.when(chargeback_row).then("ref_time").otherwise("time")
        )
        # Put the made rows in place, column by column: they are a few percent of the batch,
        # and the rest of it stays in key order without being copied by a filter and concat.
        places = base.select(pl.arg_where(is_return)).to_series()
        return base.with_columns(
            base.get_column(c).scatter(places, made.get_column(c)) for c in _ROW_SCHEMA.names()
        )

    # -- text --

    def _text(self, rows: pl.DataFrame) -> pl.DataFrame:
        acc = self.acceptors
        acquirers = acc.terminals.get_column("acquirer_merchant_id")
        terminals = acc.terminals.get_column("terminal_id")
        terminal = rows.get_column("terminal")
        noise = pl.col("place_noise")
        pool = len(self.fresh_terminals)
        fresh_terminal = pl.lit(self.fresh_terminals).gather(noise % pool)
        fresh_acquirer = pl.lit(self.fresh_acquirers).gather(noise // pool % pool)
        # A location registered by DE 42 alone still prints some terminal id on its receipts.
        some_terminal = pl.lit(self.fresh_terminals).gather(noise % 3)
        places = rows.with_columns(
            reg_acquirer=acquirers.gather(terminal)
            if len(acquirers)
            else pl.lit(None, pl.String()),
            reg_terminal=terminals.gather(terminal)
            if len(terminals)
            else pl.lit(None, pl.String()),
        ).with_columns(
            acquirer_merchant_id=pl.when(
                pl.col("unregistered") & (pl.col("new_acquirer") | pl.col("reg_acquirer").is_null())
            )
            .then(fresh_acquirer)
            .otherwise("reg_acquirer"),
            terminal_id=pl.when(pl.col("unregistered"))
            .then(fresh_terminal)
            .otherwise(pl.coalesce("reg_terminal", some_terminal)),
        )
        text = places.select(
            txn_id=self._txn_id(pl.col("key")),
            network_ref=_network_ref(
                pl.col("acquirer_merchant_id"), pl.col("ref_time"), pl.col("ref_noise")
            ),
            card_token=self.tokens.gather(rows.get_column("card")),
            type=pl.col("type").replace_strict(
                {
                    _PURCHASE: frames.PURCHASE,
                    _REFUND: frames.REFUND,
                    _CHARGEBACK: frames.CHARGEBACK,
                },
                return_dtype=pl.String(),
            ),
            original_txn_id=self._txn_id(pl.col("original")),
            amount_minor=pl.col("amount").cast(pl.String()),
            currency=pl.lit(self.world.currency),
            mcc=acc.table.get_column("mcc").gather(rows.get_column("acceptor")),
            acquirer_merchant_id="acquirer_merchant_id",
            terminal_id="terminal_id",
            acceptor_name_location=acc.variants.gather(rows.get_column("variant")),
            txn_time=pl.col("time").dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
            bad="bad",
        )
        return text

    def _txn_id(self, key: pl.Expr) -> pl.Expr:
        return pl.lit(self.prefix) + key.cast(pl.String()).str.zfill(10)

    # -- bad rows --

    def _break(self, text: pl.DataFrame) -> pl.DataFrame:
        """Give each row flagged bad one fault, cycling through FAULTS so every kind occurs."""
        positions = text["bad"].arg_true()
        faults = [FAULTS[(self.faults_done + i) % len(FAULTS)] for i in range(len(positions))]
        self.faults_done += len(faults)
        text = text.drop("bad")
        if not faults:
            return text.with_columns(fault=pl.lit(None, pl.String()))
        rows = text[positions]
        values = {c: rows[c].to_list() for c in frames.FEED_COLUMNS}
        for i, fault in enumerate(faults):
            for column, change in _FAULTS[fault]:
                values[column][i] = change(values[column][i] or "", values["txn_id"][i] or "")
        broken = pl.DataFrame(values, schema=dict.fromkeys(frames.FEED_COLUMNS, pl.String()))
        broken = broken.with_columns(pos=positions, fault=pl.Series(faults, dtype=pl.String()))
        # A join puts the few broken rows in place (a broken value is never null: empty at least).
        joined = text.with_row_index("pos").join(
            broken.rename({c: f"b_{c}" for c in frames.FEED_COLUMNS}),
            on="pos",
            how="left",
            maintain_order="left",
        )
        return joined.select(
            *(pl.coalesce(f"b_{c}", c).alias(c) for c in frames.FEED_COLUMNS),
            "fault",
        )


_PURCHASE, _REFUND, _CHARGEBACK = 0, 1, 2
# Where a purchase happened, as numbers: what a refund copies from it.
_PLACE = ("acceptor", "terminal", "unregistered", "new_acquirer", "place_noise", "variant", "card")
_ROW_SCHEMA = pl.Schema(
    {
        "key": pl.Int64(),  # the row's number in the file's sequence; the txn_id is made from it
        "type": pl.Int8(),
        "bad": pl.Boolean(),
        "acceptor": pl.Int64(),
        "terminal": pl.Int64(),  # row of the acceptor's registered terminal, null if none
        "unregistered": pl.Boolean(),
        "new_acquirer": pl.Boolean(),
        "place_noise": pl.UInt64(),
        "variant": pl.Int64(),  # descriptor variant (acceptor * _VARIANTS + v)
        "card": pl.Int64(),
        "time": frames.UTC_TIME,
        "amount": pl.Int64(),
        "original": pl.Int64(),  # key of the purchase a refund or chargeback names
        "ref_time": frames.UTC_TIME,  # what the network reference is made from
        "ref_noise": pl.UInt64(),
    }
)


def _network_ref(acquirer: pl.Expr, time: pl.Expr, noise: pl.Expr) -> pl.Expr:
    """ARN (23 digits: 7, acquirer BIN, YDDD, sequence, check) for most acquirers, else RRN (12: YDDD, HH, sequence)."""
    acquirer_hash = acquirer.hash()
    yddd = (time.dt.year() % 10) * 1_000 + time.dt.ordinal_day()
    # Numbers are joined as integers and padded once: far fewer strings than digit by digit.
    head = (acquirer_hash % 1_000_000) * 10_000 + yddd.cast(pl.UInt64())
    arn = (
        "7"
        + head.cast(pl.String()).str.zfill(10)
        + (noise % 10**12).cast(pl.String()).str.zfill(12)
    )
    rrn = yddd.cast(pl.UInt64()) * 10**8 + time.dt.hour().cast(pl.UInt64()) * 10**6 + noise % 10**6
    return pl.when(acquirer_hash % 10 < 7).then(arn).otherwise(rrn.cast(pl.String()).str.zfill(12))


# -- writing ------------------------------------------------------------------------------------


def write_feed(
    path: str | Path,
    batches: Iterable[pl.DataFrame],
    *,
    progress: bool = False,
    total: int | None = None,
) -> int:
    """Stream batches to `path`: CSV (.csv) or Parquet (.parquet); returns the rows written.

    Only the FEED_COLUMNS are written (a `fault` label column is dropped). One batch is in
    memory at a time. With `progress`, a Rich bar counts rows (against `total` if given).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{target}: a feed file ends in .csv or .parquet")
    counted = _Counted(batches)
    if not progress:
        _write(target, suffix, counted)
        return counted.rows
    with Progress(
        TextColumn("writing {task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("feed", total=total, name=target.name)
        counted.on_batch = lambda rows: bar.advance(task, rows)
        _write(target, suffix, counted)
    return counted.rows


class _Counted:
    """The batches as FEED_COLUMNS only, counting rows as they pass."""

    def __init__(self, batches: Iterable[pl.DataFrame]) -> None:
        self._batches = batches
        self.rows = 0
        self.on_batch: Callable[[int], object] = lambda rows: None

    def __iter__(self) -> Iterator[pl.DataFrame]:
        for batch in self._batches:
            self.rows += batch.height
            self.on_batch(batch.height)
            yield batch.select(frames.FEED_COLUMNS)


def _write(target: Path, suffix: str, batches: _Counted) -> None:
    if suffix == ".csv":
        _write_csv(target, batches)
    else:
        _write_parquet(target, batches)


_CSV_MARKERS = ((FIELD_BREAK.encode(), b","), (BAD_BYTE.encode(), b"\xff"))
_ANY_MARKER = f"[{FIELD_BREAK}{BAD_BYTE}]"


def _write_csv(target: Path, batches: Iterable[pl.DataFrame]) -> None:
    with open(target, "wb") as out:
        out.write((feed.HEADER + "\n").encode())
        for batch in batches:
            marked = batch.select(
                pl.any_horizontal(pl.col(_MARKED_COLUMNS).str.contains(_ANY_MARKER))
            ).to_series()
            # Polars writes the runs of ordinary rows straight to the file; only the few
            # marked rows go through bytes, where a marker becomes what no frame can hold.
            start = 0
            for position in marked.arg_true().to_list():
                if position > start:
                    batch.slice(start, position - start).write_csv(out, include_header=False)
                out.write(_unmarked_line(batch.slice(position, 1)))
                start = position + 1
            if start < batch.height:
                batch.slice(start).write_csv(out, include_header=False)


def _unmarked_line(row: pl.DataFrame) -> bytes:
    line = row.write_csv(include_header=False).encode()
    for marker, replacement in _CSV_MARKERS:
        line = line.replace(marker, replacement)
    return line


def _write_parquet(target: Path, batches: Iterable[pl.DataFrame]) -> None:
    schema = dict.fromkeys(frames.FEED_COLUMNS, pl.String())
    unmarked = pl.col(_MARKED_COLUMNS).str.replace_all(_ANY_MARKER, "\ufffd")

    def source(
        columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, size: int | None
    ) -> Iterator[pl.DataFrame]:
        for batch in batches:
            yield batch.with_columns(unmarked)

    # The streaming engine pulls one batch at a time from the generator and writes row groups.
    # zstd level 1: as small as the default level here (the ids are digits) at 3/4 of the CPU.
    register_io_source(source, schema=schema).sink_parquet(
        target, compression="zstd", compression_level=1, row_group_size=250_000
    )


def example_world(
    *, seed: int = 1, merchants: int = 40, cards: int = 2_000, linked_from: datetime | None = None
) -> World:
    """A small made-up alliance (for tests, benchmarks and demos without a database)."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
    since = (linked_from or datetime(2026, 1, 1, tzinfo=UTC)).astimezone(UTC)
    trades = sorted(descriptors.TRADES)
    shops: list[tuple[int, int, str, str, str, str, str]] = []
    terminals: list[tuple[int, str, str | None]] = []
    for merchant in range(1, merchants + 1):
        mcc = rng.choice(trades)
        name = descriptors.business_name(mcc, rng)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            location = len(shops) + 1
            shops.append(
                (
                    merchant,
                    location,
                    name,
                    mcc,
                    rng.choice(descriptors.CITIES[:6]),
                    "GB",
                    "Europe/London",
                )
            )
            acquirer = _digits(rng, 15)
            # A few locations are registered by DE 42 alone, a few not at all.
            draw = rng.random()
            if draw < 0.1:
                terminals.append((location, acquirer, None))
            elif draw < 0.95:
                for _ in range(rng.choice((1, 2))):
                    terminals.append((location, acquirer, "T" + _digits(rng, 7)))
    tokens = [
        (f"tok_{rng.getrandbits(80):020x}", since + timedelta(seconds=rng.randrange(300 * 86_400)))
        for _ in range(cards)
    ]
    return World(
        merchants=pl.DataFrame(shops, schema=WORLD_MERCHANTS, orient="row"),
        terminals=pl.DataFrame(terminals, schema=WORLD_TERMINALS, orient="row"),
        cards=pl.DataFrame(tokens, schema=WORLD_CARDS, orient="row"),
    )
