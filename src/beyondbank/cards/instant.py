"""One card event in plain Python: a feed row checked row-wise, its merchant found by dict lookups,
and one purchase or refund judged by the matching rules (the real-time path's per-event work).

A batch run validates, resolves and matches frames of a million rows; one event has nothing to
vectorise, and building one-row frames costs far more than the rules themselves. This module
gives the same answers over plain objects:

- `check` judges a row of text exactly as `feed.validate_rows` does (same verdict, same first
  reason, in the order of docs/card-feed.md), tested against it on random rows;
- `Snapshot.resolve` finds the merchant as `Resolver.resolve` does: the exact terminal, the
  acquirer merchant id's "any terminal" row, a confirmed mapping, then the resolver's fuzzy
  matcher (remembered per descriptor and MCC);
- `judge` applies rules 4 to 7 and 9 to one purchase, and `claw_back` rule 8 to one refund,
  built on `benefits.rules` and the reference implementation's own pieces (`oracle`), tested
  equal to `oracle.match` on one-event chunks in any state.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from beyondbank.alliance import service as alliance
from beyondbank.benefits import rules
from beyondbank.benefits import service as benefits
from beyondbank.cards import feed, frames, oracle, programme, service
from beyondbank.cards.descriptors import normalise
from beyondbank.cards.models import DescriptorMapping
from beyondbank.cards.resolution import FUZZY, MAPPING, TERMINAL, Match, Resolver
from beyondbank.core.money import POINTS, is_currency
from beyondbank.core.uow import UnitOfWork

Row = dict[str, Any]
UsageKey = oracle.UsageKey

# -- rule by rule, the feed's validation of one row ------------------------------------------------


def _full(pattern: str) -> re.Pattern[str]:
    """A feed pattern anchored with ^…$ as a whole-text match: Python's `$` would also match
    before a trailing newline, Polars' (Rust's) does not."""
    return re.compile(pattern.removeprefix("^").removesuffix("$"))


_TIME_SHAPE = _full(feed._TIME_SHAPE)
_TIME_NAIVE = _full(feed._TIME_NAIVE)
_TIME_OFFSET = _full(feed._TIME_OFFSET)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NEGATIVE = re.compile(r"-\d+(\.\d*)?")
_DECIMAL = re.compile(r"\d*\.\d*")
_ZEROS = re.compile(r"0+")
_DIGITS = re.compile(r"\d+")
_MCC = re.compile(r"[0-9]{4}")
_INT64 = range(-(2**63), 2**63)
_NOT_A_CARD_CURRENCY = feed.NOT_MONEY | {POINTS}


@dataclass(frozen=True, slots=True)
class Event:
    """An accepted feed row, typed as frames.TRANSACTIONS (line aside)."""

    txn_id: str
    network_ref: str
    card_token: str
    type: str
    original_txn_id: str | None
    amount_minor: int
    currency: str
    mcc: str
    acquirer_merchant_id: str
    terminal_id: str | None
    acceptor_name_location: str
    txn_time: datetime

    def as_row(self) -> Row:
        return {name: getattr(self, name) for name in frames.FEED_COLUMNS}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row the feed's rules refuse, with the first reason (the quarantine file's text)."""

    reason: str


def check(row: Mapping[str, str | None]) -> Event | Rejected:
    """The row as `feed.validate_rows([row])` judges it: accepted, or the first rule it breaks.
    Absent and None fields count as empty."""
    text = {c: row.get(c) or "" for c in frames.FEED_COLUMNS}
    reason = _first_reason(text)
    if reason is not None:
        return Rejected(reason)
    instant = _instant(text["txn_time"])
    assert instant is not None  # _first_reason refused every row without one
    return Event(
        txn_id=text["txn_id"],
        network_ref=text["network_ref"],
        card_token=text["card_token"],
        type=text["type"],
        original_txn_id=text["original_txn_id"] or None,
        amount_minor=int(text["amount_minor"]),
        currency=text["currency"],
        mcc=text["mcc"],
        acquirer_merchant_id=text["acquirer_merchant_id"],
        terminal_id=text["terminal_id"] or None,
        acceptor_name_location=text["acceptor_name_location"],
        txn_time=instant,
    )


def _first_reason(text: Mapping[str, str]) -> str | None:
    if any(feed._REPLACEMENT in value for value in text.values()):
        return feed.NOT_UTF8
    for column in feed.REQUIRED:
        if not text[column]:
            return feed.missing(column)
    kind = text["type"]
    if kind not in frames.TXN_TYPES:
        return feed.UNKNOWN_TYPE
    amount = text["amount_minor"]
    if _amount(amount) is None or amount.startswith("+"):
        return _amount_reason(amount)
    currency = text["currency"]
    if currency in _NOT_A_CARD_CURRENCY or not is_currency(currency):
        if currency == POINTS:
            return feed.POINTS_CURRENCY
        return feed.NOT_MONEY_CURRENCY if currency in feed.NOT_MONEY else feed.UNKNOWN_CURRENCY
    if not _MCC.fullmatch(text["mcc"]):
        return feed.BAD_MCC
    for column, limit in feed.MAX_LENGTH.items():
        if len(text[column]) > limit:
            return feed.too_long(column)
    no_original = not text["original_txn_id"]
    if kind == frames.REFUND and no_original:
        return feed.REFUND_WITHOUT_ORIGINAL
    if kind == frames.CHARGEBACK and no_original:
        return feed.CHARGEBACK_WITHOUT_ORIGINAL
    if kind == frames.PURCHASE and not no_original:
        return feed.PURCHASE_WITH_ORIGINAL
    if _instant(text["txn_time"]) is None:
        return _time_reason(text["txn_time"])
    return None


def _amount(text: str) -> int | None:
    """A positive amount as Polars' `str.to_integer` reads it (ASCII digits, an optional sign,
    within 64 bits), or None."""
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if value in _INT64 and value > 0 else None


def _amount_reason(text: str) -> str:
    if _NEGATIVE.fullmatch(text):
        return feed.AMOUNT_NEGATIVE
    if _DECIMAL.fullmatch(text) and any(c.isdigit() for c in text):
        return feed.AMOUNT_DECIMAL
    if _ZEROS.fullmatch(text):
        return feed.AMOUNT_ZERO
    if _DIGITS.fullmatch(text):
        return feed.AMOUNT_TOO_LARGE
    return feed.AMOUNT_NOT_A_NUMBER


def _instant(text: str) -> datetime | None:
    """The UTC instant of an accepted txn_time, as the feed's parser reads it: fractions kept to
    the microsecond (truncated), a leap second 60 rolled into the next minute; None otherwise.
    Year 0000 is refused as not a real date (Python has no year 0; the columnar path would
    accept it and then fail to hand the row to Python)."""
    if not _TIME_SHAPE.fullmatch(text) or not text.isascii():
        return None
    body = text.removesuffix("Z").removesuffix("+00:00")
    whole, _, fraction = body.partition(".")
    try:
        day, clock = whole.split("T")
        year, month, date_of_month = (int(p) for p in day.split("-"))
        hour, minute, second = (int(p) for p in clock.split(":"))
        leap = second == 60
        at = datetime(year, month, date_of_month, hour, minute, 59 if leap else second, tzinfo=UTC)
    except ValueError:
        return None
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return at + timedelta(seconds=1 if leap else 0, microseconds=micros)


def _time_reason(text: str) -> str:
    if _TIME_SHAPE.fullmatch(text):
        return feed.TIME_INVALID
    if _TIME_NAIVE.fullmatch(text):
        return feed.TIME_NAIVE
    if _TIME_OFFSET.fullmatch(text):
        return feed.TIME_NOT_UTC
    return feed.TIME_MALFORMED


# -- rules 4 to 9 for one transaction --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Purchase:
    """A purchase with its merchant and member (rules 2 and 3 already applied)."""

    txn_id: str
    txn_time: datetime
    amount_minor: int
    currency: str
    member_id: int
    merchant_id: int


@dataclass(frozen=True, slots=True)
class Judged:
    """What one purchase earns: its reward row (frames.REWARDS), its grant (frames.GRANTS), the
    member uses it takes and the (benefit, budget, quantity) it consumes."""

    reward: Row
    grant: Row
    uses: tuple[UsageKey, ...]
    consumed: tuple[tuple[int, int, int], ...]


def judge(
    purchase: Purchase,
    offers: Sequence[oracle.Benefit],
    *,
    circles: frozenset[int],
    last_purchase_at: datetime | None,
    uses: Mapping[UsageKey, int],
) -> Judged | None:
    """Rules 4–7 and 9 for one purchase against its merchant's benefits, whose budget and
    quantity are what is left now, with the member's uses so far; None when nothing is earned."""
    terms_purchase = rules.Purchase(
        at=purchase.txn_time,
        currency=purchase.currency,
        amount_minor=purchase.amount_minor,
        member_circle_ids=circles,
        last_purchase_at=last_purchase_at,
    )
    cash: list[oracle.Award] = []
    points: list[oracle.Award] = []
    for benefit in offers:
        award = _award(benefit, purchase.member_id, terms_purchase, uses)
        if award is not None:
            (points if benefit.kind == oracle.POINTS else cash).append(award)
    best_cash, best_points = oracle._best(cash), oracle._best(points)
    if best_cash is None and best_points is None:
        return None
    awards = [a for a in (best_cash, best_points) if a is not None]
    return Judged(
        reward=_reward_row(purchase, best_cash, best_points),
        grant=_grant_row(purchase, best_cash, best_points),
        uses=tuple(a.usage_key for a in awards),
        consumed=tuple(
            (a.benefit.id, a.value if a.benefit.kind in oracle.CASH else 0, 1) for a in awards
        ),
    )


def _award(
    benefit: oracle.Benefit,
    member_id: int,
    purchase: rules.Purchase,
    uses: Mapping[UsageKey, int],
) -> oracle.Award | None:
    """What the benefit gives the purchase, if it is eligible and not capped (rules 4–6)."""
    if rules.ineligibility(benefit.terms, purchase) is not None:
        return None
    amount = purchase.amount_minor or 0
    terms = benefit.terms
    key = (
        benefit.id,
        member_id,
        rules.period_key_at(terms.limit_period, purchase.at, terms.schedule.timezone),
    )
    if not rules.within_member_limit(terms.member_limit, uses.get(key, 0)):
        return None
    if benefit.kind == oracle.POINTS:
        if not rules.has_room(None, benefit.quantity_remaining):
            return None
        earned = rules.points_earned(amount, purchase.currency, benefit.points_multiplier)
        return oracle.Award(benefit, earned, key) if earned > 0 else None
    if not rules.has_room(benefit.budget_remaining, benefit.quantity_remaining):
        return None
    reward = rules.reward_minor(terms.reward, amount)
    if reward <= 0:
        return None
    return oracle.Award(benefit, rules.grant_minor(reward, benefit.budget_remaining), key)


def _parts(
    purchase: Purchase, cash: oracle.Award | None, points: oracle.Award | None
) -> dict[str, Any]:
    """The amounts a grant and its reward row share (rule 9)."""
    grant = cash.value if cash is not None else 0
    merchant_funded, bank_funded = (
        rules.funding_split(grant, cash.benefit.merchant_share_bps) if cash else (0, 0)
    )
    # The commission follows the cash benefit; a points-only purchase pays its points benefit's.
    commission_from = cash or points
    assert commission_from is not None
    return {
        "txn_id": purchase.txn_id,
        "member_id": purchase.member_id,
        "merchant_id": purchase.merchant_id,
        "currency": purchase.currency,
        "purchase_amount_minor": purchase.amount_minor,
        "benefit_id": cash.benefit.id if cash else None,
        "amount_minor": grant,
        "merchant_funded_minor": merchant_funded,
        "bank_funded_minor": bank_funded,
        "commission_minor": rules.commission_minor(
            purchase.amount_minor, commission_from.benefit.commission_bps
        ),
        "points_benefit_id": points.benefit.id if points else None,
        "points": points.value if points else 0,
    }


def _reward_row(purchase: Purchase, cash: oracle.Award | None, points: oracle.Award | None) -> Row:
    parts = _parts(purchase, cash, points)
    row = {
        "kind": frames.REWARD,
        "original_txn_id": None,
        "txn_time": purchase.txn_time,
        "txn_amount_minor": purchase.amount_minor,
        **parts,
    }
    return {name: row[name] for name in frames.REWARDS.names()}


def _grant_row(purchase: Purchase, cash: oracle.Award | None, points: oracle.Award | None) -> Row:
    parts = _parts(purchase, cash, points)
    row = {"reward_minor": parts["amount_minor"], **parts, **dict.fromkeys(oracle.GRANT_TOTALS, 0)}
    return {name: row[name] for name in frames.GRANTS.names()}


def claw_back(refund: Row, grant: Row) -> tuple[Row | None, Row]:
    """Rule 8 for one refund or chargeback (a TRANSACTIONS row) against its original's grant
    (a GRANTS row): the clawback row, if anything is clawed back, and the grant's new totals."""
    totals = oracle._normalised_grant(dict(grant))
    row = oracle._claw_back(refund, {totals["txn_id"]: totals}, set())
    return row, totals


def last_purchase_before(
    history: Sequence[tuple[datetime, str]], at: datetime, txn_id: str
) -> datetime | None:
    """The latest of a member's purchases at a merchant that precedes (at, txn_id) in processing
    order (the new-to-merchant rule's "last purchase")."""
    earlier = [t for t in history if t < (at, txn_id)]
    return max(earlier)[0] if earlier else None


# -- the programme as one process keeps it -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Where an event was made: the merchant and location, how it was found, and the descriptor
    to put in front of a reviewer when the fuzzy matcher was unsure."""

    merchant_id: int | None
    location_id: int | None
    resolved_by: str | None
    review: Row | None = None


@dataclass
class Snapshot:
    """The alliance and its card-linked benefits as of `built`: terminals and confirmed mappings
    as dicts, the resolver for descriptors, each merchant's benefits (budgets and quantities are
    read again from the database for every batch), public ids and names, and the active
    circles' tests for targeting (each member's home, work and attributes are read per batch)."""

    resolver: Resolver
    terminals: dict[tuple[str, str], tuple[int, int]]
    any_terminal: dict[str, tuple[int, int]]
    mappings: dict[str, tuple[int, int | None]]
    offers: dict[int, list[oracle.Benefit]]  # merchant id → benefits, in id order
    benefit_refs: dict[int, str]
    merchants: dict[int, tuple[str, str, str]]  # id → (public id, trading name, sub-industry)
    circles: alliance.CircleTests  # targeting: the active circles' areas and segment rules
    built: float
    _descriptors: dict[tuple[str, str], _Descriptor] = field(default_factory=dict)

    def resolve(self, event: Event) -> Place:
        """Rule 2: the exact terminal, the merchant id's any-terminal row, a confirmed mapping,
        then the fuzzy matcher; an unsure candidate comes with the review row to upsert."""
        tid = event.terminal_id
        found = (
            self.terminals.get((event.acquirer_merchant_id, tid)) if tid is not None else None
        ) or self.any_terminal.get(event.acquirer_merchant_id)
        if found is not None:
            return Place(found[0], found[1], TERMINAL)
        text, mcc = event.acceptor_name_location, event.mcc
        known = self._descriptors.get((text, mcc))
        if known is None:
            parts = normalise(text)
            # A confirmed mapping needs no fuzzy matching (the resolver's order of precedence).
            match = None if parts.key in self.mappings else self.resolver.match(text, mcc)
            if len(self._descriptors) >= _REMEMBERED:
                self._descriptors.clear()
            known = self._descriptors[(text, mcc)] = _Descriptor(parts.key, parts.city, match)
        mapped = self.mappings.get(known.key)
        if mapped is not None:
            return Place(mapped[0], mapped[1], MAPPING)
        match = known.match
        assert match is not None
        if match.accepted:
            return Place(match.merchant_id, match.location_id, FUZZY)
        if match.merchant_id is None:
            return Place(None, None, None)
        review = {
            "descriptor_key": known.key,
            "mcc": mcc,
            "example": text[:64],
            "city": known.city,
            "merchant_id": match.merchant_id,
            "location_id": match.location_id,
            "score": match.confidence,
        }
        return Place(None, None, None, review)


@dataclass(frozen=True, slots=True)
class _Descriptor:
    """A descriptor's key and city, and the fuzzy matcher's answer (None when it is mapped)."""

    key: str
    city: str | None
    match: Match | None


_REMEMBERED = 100_000  # distinct (descriptor, MCC) answers kept per snapshot


def build_snapshot(uow: UnitOfWork, resolver: Resolver) -> Snapshot:
    """Read the alliance, confirmed mappings and card-linked benefits once."""
    terminals: dict[tuple[str, str], tuple[int, int]] = {}
    any_terminal: dict[str, tuple[int, int]] = {}
    # The first row of a key wins, as in Resolver (same query, same order).
    for aid, tid, location_id, merchant_id in alliance.alliance_terminals(uow):
        if tid is None:
            any_terminal.setdefault(aid, (merchant_id, location_id))
        else:
            terminals.setdefault((aid, tid), (merchant_id, location_id))
    mappings: dict[str, tuple[int, int | None]] = {}  # descriptor_key is unique
    for key, mapped_merchant, mapped_location in uow.session.execute(_MAPPINGS_QUERY).all():
        mappings[key] = (mapped_merchant, mapped_location)
    merchants = {
        r["merchant_id"]: (r["merchant_ref"], r["name"], r["sub_industry"])
        for r in alliance.alliance_locations(uow)
    }
    rows = benefits.card_linked_benefits(uow)
    frame, targets = programme.benefits_frame(rows)
    targeted: dict[int, set[int]] = {}
    for benefit_id, circle_id in targets.iter_rows():
        targeted.setdefault(benefit_id, set()).add(circle_id)
    offers: dict[int, list[oracle.Benefit]] = {}
    for row in frame.iter_rows(named=True):
        benefit = oracle._benefit(row, frozenset(targeted.get(row["benefit_id"], ())))
        if benefit is not None:
            offers.setdefault(benefit.merchant_id, []).append(benefit)
    return Snapshot(
        resolver=resolver,
        terminals=terminals,
        any_terminal=any_terminal,
        mappings=mappings,
        offers=offers,
        benefit_refs={b.id: b.public_id for b in rows},
        merchants=merchants,
        circles=alliance.circle_tests(uow),
        built=time.monotonic(),
    )


def with_counters(
    offers: Sequence[oracle.Benefit], fresh: Mapping[int, tuple[bool, int | None, int | None]]
) -> list[oracle.Benefit]:
    """The benefits with their status, budget and quantity as the database has them now
    (`fresh`: id → (active, budget left, quantity left)); a benefit gone from it is dropped."""
    current = []
    for benefit in offers:
        if benefit.id not in fresh:
            continue
        active, budget, quantity = fresh[benefit.id]
        current.append(
            replace(
                benefit,
                terms=replace(benefit.terms, active=active),
                # Points cost the bank no cash: a points benefit has no budget to spend.
                budget_remaining=None if benefit.kind == oracle.POINTS else budget,
                quantity_remaining=quantity,
            )
        )
    return current


class SnapshotCache:
    """The snapshot one process shares between requests, rebuilt when older than `ttl` seconds
    (new terminals, mappings, merchants and benefits are seen within that time)."""

    def __init__(self, ttl_seconds: float, threshold: float | None) -> None:
        self.ttl = ttl_seconds
        self.threshold = threshold
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def peek(self) -> Snapshot | None:
        return self._snapshot

    def is_stale(self, snapshot: Snapshot) -> bool:
        return time.monotonic() - snapshot.built > self.ttl

    def rebuild(self, uow: UnitOfWork) -> Snapshot:
        """A new snapshot, unless another thread built a fresh one meanwhile."""
        with self._lock:
            current = self._snapshot
            if current is None or self.is_stale(current):
                resolver = service.build_resolver(uow, self.threshold)
                current = self._snapshot = build_snapshot(uow, resolver)
            return current


_MAPPINGS_QUERY = select(
    DescriptorMapping.descriptor_key, DescriptorMapping.merchant_id, DescriptorMapping.location_id
)
