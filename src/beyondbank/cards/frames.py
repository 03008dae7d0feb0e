"""The columnar contract between the card feed, the descriptor resolver, the matching engine and its oracle.

Every stage passes Polars frames with exactly these schemas (`conform` checks them), so the
vectorised engine and the row-by-row reference implementation take the same input and must
return the same output. Amounts are integer minor units; instants are UTC microseconds.

Ids here are the database's internal integer ids (member, merchant, location, benefit,
circle); the service turns them into public ids at the edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")


def _schema(columns: Mapping[str, pl.DataType]) -> pl.Schema:
    return pl.Schema(columns)


PURCHASE = "purchase"
REFUND = "refund"
CHARGEBACK = "chargeback"
TXN_TYPES = (PURCHASE, REFUND, CHARGEBACK)

# -- the card feed ------------------------------------------------------------------------------

# The columns of a feed file, in order (docs/card-feed.md). Files are read as text and
# validated row by row in columns; these are the types of an accepted row.
FEED_COLUMNS = (
    "txn_id",
    "network_ref",
    "card_token",
    "type",
    "original_txn_id",
    "amount_minor",
    "currency",
    "mcc",
    "acquirer_merchant_id",
    "terminal_id",
    "acceptor_name_location",
    "txn_time",
)

TRANSACTIONS = _schema(
    {
        "line": pl.Int64(),  # the row's line number in its file (the header is line 1)
        "txn_id": pl.String(),
        "network_ref": pl.String(),
        "card_token": pl.String(),
        "type": pl.String(),  # one of TXN_TYPES
        "original_txn_id": pl.String(),  # set for refunds and chargebacks, null for purchases
        "amount_minor": pl.Int64(),  # > 0
        "currency": pl.String(),  # ISO 4217
        "mcc": pl.String(),  # four digits
        "acquirer_merchant_id": pl.String(),  # ISO 8583 DE 42
        "terminal_id": pl.String(),  # DE 41, may be null
        "acceptor_name_location": pl.String(),  # DE 43
        "txn_time": UTC_TIME,
    }
)

# A quarantined row: where it was, why, and the raw text of the row as read.
QUARANTINE = _schema({"line": pl.Int64(), "reason": pl.String(), "raw": pl.String()})

# Merchant resolution appends these to TRANSACTIONS.
RESOLUTION = _schema(
    {
        "merchant_id": pl.Int64(),  # null: unresolved, no reward
        "location_id": pl.Int64(),
        "resolved_by": pl.String(),  # "terminal", "mapping", "fuzzy" or null
        "confidence": pl.Float64(),  # 1.0 for terminal and mapping matches
    }
)
RESOLVED = pl.Schema({**TRANSACTIONS, **RESOLUTION})

# -- the programme as the engine sees it ------------------------------------------------------

# Which member a card token stood for, when: the card link's interval intersected with the
# membership's active interval, [valid_from, valid_to); a null valid_to is open-ended.
CARDS = _schema(
    {
        "card_token": pl.String(),
        "member_id": pl.Int64(),
        "valid_from": UTC_TIME,
        "valid_to": UTC_TIME,
    }
)

MEMBER_CIRCLES = _schema({"member_id": pl.Int64(), "circle_id": pl.Int64()})

# Card-linked benefits (channel card_linked; kinds percent_off, amount_off, spend_threshold,
# points_multiplier). Budgets and quantities are what is left now.
BENEFITS = _schema(
    {
        "benefit_id": pl.Int64(),
        "merchant_id": pl.Int64(),
        "kind": pl.String(),
        "active": pl.Boolean(),
        "currency": pl.String(),
        "valid_from": pl.Date(),  # merchant-local dates, inclusive
        "valid_to": pl.Date(),
        "weekdays": pl.List(pl.Int8()),  # ISO weekdays, 1 = Monday
        "hour_start": pl.Int8(),  # [hour_start, hour_end) local
        "hour_end": pl.Int8(),
        "timezone": pl.String(),  # IANA
        "min_spend_minor": pl.Int64(),
        "percent_bps": pl.Int64(),
        "max_reward_minor": pl.Int64(),
        "fixed_minor": pl.Int64(),
        "threshold_minor": pl.Int64(),
        "points_multiplier": pl.Int64(),
        "member_limit": pl.Int64(),  # null: no limit
        "limit_period": pl.String(),  # day, week, month, campaign
        "budget_remaining_minor": pl.Int64(),  # null: no budget
        "quantity_remaining": pl.Int64(),  # null: no quantity limit
        "merchant_share_bps": pl.Int64(),
        "commission_bps": pl.Int64(),
        "new_to_merchant_days": pl.Int64(),
    }
)

BENEFIT_TARGETS = _schema({"benefit_id": pl.Int64(), "circle_id": pl.Int64()})

# -- state carried between runs ---------------------------------------------------------------

# Rewards counted per member, benefit and limit period (voucher redemptions count too).
USAGE = _schema(
    {
        "benefit_id": pl.Int64(),
        "member_id": pl.Int64(),
        "period_key": pl.String(),
        "uses": pl.Int64(),
    }
)

# Purchases seen in earlier runs, by member and merchant (for new_to_merchant_days).
PRIOR_PURCHASES = _schema(
    {
        "txn_id": pl.String(),
        "member_id": pl.Int64(),
        "merchant_id": pl.Int64(),
        "txn_time": UTC_TIME,
    }
)

# What each earlier purchase was granted and how much of it has been clawed back so far.
GRANTS = _schema(
    {
        "txn_id": pl.String(),
        "member_id": pl.Int64(),
        "merchant_id": pl.Int64(),
        "currency": pl.String(),
        "purchase_amount_minor": pl.Int64(),
        "benefit_id": pl.Int64(),  # the cash benefit, null when only points were earned
        "reward_minor": pl.Int64(),  # cash granted
        "merchant_funded_minor": pl.Int64(),
        "commission_minor": pl.Int64(),
        "points_benefit_id": pl.Int64(),
        "points": pl.Int64(),
        "refunded_minor": pl.Int64(),  # refund and chargeback amounts so far
        "clawed_back_minor": pl.Int64(),
        "merchant_clawed_back_minor": pl.Int64(),
        "commission_clawed_back_minor": pl.Int64(),
        "points_clawed_back": pl.Int64(),
    }
)

# -- output -------------------------------------------------------------------------------------

REWARD = "reward"
CLAWBACK = "clawback"

# One row per granted purchase (kind reward) and per refund or chargeback that claws anything
# back (kind clawback). Amounts are positive in both; a clawback row's original_txn_id names
# the purchase. bank_funded = amount - merchant_funded.
REWARDS = _schema(
    {
        "kind": pl.String(),
        "txn_id": pl.String(),
        "original_txn_id": pl.String(),
        "txn_time": UTC_TIME,
        "member_id": pl.Int64(),
        "merchant_id": pl.Int64(),
        "currency": pl.String(),
        "purchase_amount_minor": pl.Int64(),  # the purchase's amount (for a clawback: the original's)
        "txn_amount_minor": pl.Int64(),  # this transaction's amount (the refund's, for a clawback)
        "benefit_id": pl.Int64(),
        "amount_minor": pl.Int64(),
        "merchant_funded_minor": pl.Int64(),
        "bank_funded_minor": pl.Int64(),
        "commission_minor": pl.Int64(),
        "points_benefit_id": pl.Int64(),
        "points": pl.Int64(),
    }
)

DUPLICATES = _schema({"line": pl.Int64(), "txn_id": pl.String()})

# Rewards this run added to member counters and what it took from budgets and quantities.
USAGE_ADDED = USAGE
CONSUMED = _schema({"benefit_id": pl.Int64(), "budget_minor": pl.Int64(), "quantity": pl.Int64()})


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: pl.Schema, name: str) -> pl.DataFrame:
    """The frame's columns in the schema's order; a missing column or another type is an error."""
    missing = [c for c in schema.names() if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")
    wrong = [
        f"{c} is {frame.schema[c]}, expected {t}"
        for c, t in schema.items()
        if frame.schema[c] != t and frame.schema[c] != pl.Null
    ]
    if wrong:
        raise ValueError(f"{name}: {'; '.join(wrong)}")
    return frame.select(pl.col(c).cast(t) for c, t in schema.items())


def merge_sorted_runs(
    runs: Sequence[Path], by: Sequence[str], slice_rows: int
) -> Iterator[pl.DataFrame]:
    """The rows of Arrow IPC files each sorted by `by`, in one order by `by` (ties in the runs'
    order), in pieces, holding at most one slice of each run: a k-way merge by slices.

    No unread row comes before the least last key among the current slices of the runs not
    read to the end (the bound), so whatever comes before it can go out. Rows equal to it can
    too, from the runs up to the first whose slice ends at it: a later run's must wait, as that
    run may hold more of them unread."""
    sizes = [int(pl.scan_ipc(r).select(pl.len()).collect().item()) for r in runs]
    offsets = [0] * len(runs)
    buffers: list[pl.DataFrame | None] = [None] * len(runs)
    while True:
        for i, run in enumerate(runs):
            current = buffers[i]
            if (current is None or not current.height) and offsets[i] < sizes[i]:
                buffers[i] = pl.scan_ipc(run).slice(offsets[i], slice_rows).collect()
                offsets[i] += slice_rows
        if not any(b is not None and b.height for b in buffers):
            return
        tails = {
            i: b.select(by).row(-1)
            for i, b in enumerate(buffers)
            if b is not None and b.height and offsets[i] < sizes[i]
        }
        bound = min(tails.values()) if tails else None
        first = min((i for i, tail in tails.items() if tail == bound), default=len(runs))
        out = []
        for i, b in enumerate(buffers):
            if b is None or not b.height:
                continue
            ready = pl.lit(True) if bound is None else _before(by, bound, inclusive=i <= first)
            out.append(b.filter(ready))
            buffers[i] = b.filter(~ready)
        yield pl.concat(out).sort(by, maintain_order=True)


def _before(by: Sequence[str], key: tuple[object, ...], *, inclusive: bool) -> pl.Expr:
    """Rows whose `by` columns come before `key` (or equal it), compared as a tuple."""
    *first, last = by
    condition = pl.col(last) <= key[-1] if inclusive else pl.col(last) < key[-1]
    for column, value in zip(reversed(first), reversed(key[:-1]), strict=True):
        condition = (pl.col(column) < value) | ((pl.col(column) == value) & condition)
    return condition


def rebatched(pieces: Iterable[pl.DataFrame], rows: int) -> Iterator[pl.DataFrame]:
    """The pieces' rows in order, `rows` at a time (the last batch may hold fewer)."""
    pending: list[pl.DataFrame] = []
    held = 0
    for piece in pieces:
        pending.append(piece)
        held += piece.height
        while held >= rows:
            ready = pl.concat(pending)
            yield ready.slice(0, rows)
            rest = ready.slice(rows)
            pending, held = [rest], rest.height
    if held:
        yield pl.concat(pending)


@dataclass(frozen=True)
class Programme:
    """The programme at the start of a run: who holds which card, circles, benefits."""

    cards: pl.DataFrame = field(default_factory=lambda: empty(CARDS))
    member_circles: pl.DataFrame = field(default_factory=lambda: empty(MEMBER_CIRCLES))
    benefits: pl.DataFrame = field(default_factory=lambda: empty(BENEFITS))
    benefit_targets: pl.DataFrame = field(default_factory=lambda: empty(BENEFIT_TARGETS))


@dataclass(frozen=True)
class State:
    """What earlier runs (and voucher redemptions) left behind that this run's rules read."""

    usage: pl.DataFrame = field(default_factory=lambda: empty(USAGE))
    prior_purchases: pl.DataFrame = field(default_factory=lambda: empty(PRIOR_PURCHASES))
    grants: pl.DataFrame = field(default_factory=lambda: empty(GRANTS))


@dataclass(frozen=True)
class Outcome:
    """A run's result: reward and clawback rows, and what they take from the counters."""

    rewards: pl.DataFrame  # REWARDS, in (kind reward before clawback, txn_time, txn_id) order
    usage_added: pl.DataFrame  # USAGE: uses this run added
    consumed: pl.DataFrame  # CONSUMED: budget and quantity this run took, per benefit
    grants: pl.DataFrame  # GRANTS rows new in this run or changed by its clawbacks
    purchases: (
        pl.DataFrame
    )  # PRIOR_PURCHASES rows for this run's purchases with a member and merchant
    duplicates: (
        pl.DataFrame
    )  # DUPLICATES: rows skipped because their txn_id came earlier in the input
