"""The card-linked matching rules applied row by row: the reference the vectorised engine must equal.

Written for clarity, not speed: every transaction is visited in processing order and judged by
the pure functions of `benefits.rules`, with plain dictionaries as counters. docs/matching.md
states the rules this follows, numbered as in DESIGN.md; `engine.match` must return exactly
the same frames.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from beyondbank.benefits import rules
from beyondbank.benefits.models import BenefitKind, LimitPeriod
from beyondbank.cards import frames
from beyondbank.cards.frames import Outcome, Programme, State
from beyondbank.core.money import pro_rata

Row = dict[str, Any]
UsageKey = tuple[int, int, str]  # benefit, member, period key

CASH = frozenset({BenefitKind.PERCENT_OFF, BenefitKind.AMOUNT_OFF, BenefitKind.SPEND_THRESHOLD})
POINTS = BenefitKind.POINTS_MULTIPLIER
CLAWBACK_TYPES = frozenset({frames.REFUND, frames.CHARGEBACK})
GRANT_TOTALS = (
    "refunded_minor",
    "clawed_back_minor",
    "merchant_clawed_back_minor",
    "commission_clawed_back_minor",
    "points_clawed_back",
)


@dataclass(frozen=True, slots=True)
class Benefit:
    """One card-linked benefit: its rule terms and the counters and splits the engine applies."""

    terms: rules.BenefitTerms
    kind: BenefitKind
    merchant_id: int
    points_multiplier: int | None
    budget_remaining: int | None
    quantity_remaining: int | None
    merchant_share_bps: int
    commission_bps: int

    @property
    def id(self) -> int:
        return self.terms.id


@dataclass(frozen=True, slots=True)
class Award:
    """What one benefit gives one purchase: cash granted or points earned, and its usage key."""

    benefit: Benefit
    value: int
    usage_key: UsageKey


def match(transactions: pl.DataFrame, programme: Programme, state: State) -> Outcome:
    """Rewards and clawbacks for one chunk of a card feed, judged one transaction at a time."""
    rows = list(frames.conform(transactions, frames.RESOLVED, "transactions").iter_rows(named=True))
    kept, duplicates = _deduplicate(rows)
    ordered = sorted(kept, key=lambda row: (row["txn_time"], row["txn_id"]))

    purchases = _member_purchases(ordered, programme.cards)
    rewarder = _Rewarder(programme, state, purchases)
    reward_rows = [row for row in (rewarder.reward(p) for p in purchases) if row is not None]

    grants = {row["txn_id"]: _normalised_grant(row) for row in state.grants.iter_rows(named=True)}
    grants.update(rewarder.grants)
    changed: set[str] = set()
    clawback_rows = []
    for row in ordered:
        if row["type"] in CLAWBACK_TYPES:
            clawback = _claw_back(row, grants, changed)
            if clawback is not None:
                clawback_rows.append(clawback)

    # This chunk's grants in processing order, then the earlier grants it changed by txn_id.
    grant_rows = [grants[txn_id] for txn_id in rewarder.grants] + [
        grants[txn_id] for txn_id in sorted(changed - set(rewarder.grants))
    ]
    return Outcome(
        rewards=_frame(reward_rows + clawback_rows, frames.REWARDS),
        usage_added=_frame(
            [
                {"benefit_id": b, "member_id": m, "period_key": k, "uses": n}
                for (b, m, k), n in sorted(rewarder.uses_added.items())
            ],
            frames.USAGE_ADDED,
        ),
        consumed=_frame(
            [
                {
                    "benefit_id": b,
                    "budget_minor": rewarder.budget_taken[b],
                    "quantity": rewarder.quantity_taken[b],
                }
                for b in sorted(rewarder.quantity_taken)
            ],
            frames.CONSUMED,
        ),
        grants=_frame(grant_rows, frames.GRANTS),
        purchases=_frame(
            [
                {
                    "txn_id": p["txn_id"],
                    "member_id": p["member_id"],
                    "merchant_id": p["merchant_id"],
                    "txn_time": p["txn_time"],
                }
                for p in purchases
            ],
            frames.PRIOR_PURCHASES,
        ),
        duplicates=_frame(duplicates, frames.DUPLICATES),
    )


# -- rule 1: each txn_id counts once -------------------------------------------------------------


def _deduplicate(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """Keep the lowest line of each txn_id; the other rows are duplicates (in line order)."""
    seen: set[str] = set()
    kept, duplicates = [], []
    for row in sorted(rows, key=lambda r: r["line"]):
        if row["txn_id"] in seen:
            duplicates.append({"line": row["line"], "txn_id": row["txn_id"]})
        else:
            seen.add(row["txn_id"])
            kept.append(row)
    return kept, duplicates


# -- rules 2 and 3: merchant and member ----------------------------------------------------------


def _member_purchases(ordered: list[Row], cards: pl.DataFrame) -> list[Row]:
    """The purchases (in processing order) that have a merchant and a member at their time."""
    links: dict[str, list[Row]] = defaultdict(list)
    for link in cards.iter_rows(named=True):
        links[link["card_token"]].append(link)
    purchases = []
    for row in ordered:
        if row["type"] != frames.PURCHASE or row["merchant_id"] is None:
            continue
        member_id = _member_at(links.get(row["card_token"], []), row["txn_time"])
        if member_id is not None:
            purchases.append({**row, "member_id": member_id})
    return purchases


def _member_at(links: list[Row], at: datetime) -> int | None:
    """The member the card stood for at `at`; should intervals overlap, the latest start wins,
    then the lowest member id (a null start is the earliest)."""
    valid = [
        link
        for link in links
        if (link["valid_from"] is None or link["valid_from"] <= at)
        and (link["valid_to"] is None or at < link["valid_to"])
    ]
    if not valid:
        return None
    best = max(
        valid,
        key=lambda link: (
            link["valid_from"] is not None,
            link["valid_from"] or at,
            -link["member_id"],
        ),
    )
    member_id: int = best["member_id"]
    return member_id


# -- rules 4 to 7: eligibility, caps, selection, funding ------------------------------------------


class _Rewarder:
    """Judges purchases one by one in processing order, holding this chunk's counters."""

    def __init__(self, programme: Programme, state: State, purchases: list[Row]) -> None:
        targets: dict[int, set[int]] = defaultdict(set)
        for row in programme.benefit_targets.iter_rows(named=True):
            targets[row["benefit_id"]].add(row["circle_id"])
        self.circles: dict[int, set[int]] = defaultdict(set)
        for row in programme.member_circles.iter_rows(named=True):
            self.circles[row["member_id"]].add(row["circle_id"])
        self.benefits: dict[int, list[Benefit]] = defaultdict(list)
        for row in programme.benefits.iter_rows(named=True):
            benefit = _benefit(row, frozenset(targets.get(row["benefit_id"], ())))
            if benefit is not None:
                self.benefits[benefit.merchant_id].append(benefit)
        self.prior_uses: Counter[UsageKey] = Counter()
        for row in state.usage.iter_rows(named=True):
            self.prior_uses[(row["benefit_id"], row["member_id"], row["period_key"])] += row["uses"]
        self.history = _purchase_history(state.prior_purchases.iter_rows(named=True), purchases)
        self.uses_added: Counter[UsageKey] = Counter()
        self.budget_taken: Counter[int] = Counter()
        self.quantity_taken: Counter[int] = Counter()
        self.grants: dict[str, Row] = {}

    def reward(self, row: Row) -> Row | None:
        """The reward row for one purchase (and its grant recorded), or None."""
        purchase = rules.Purchase(
            at=row["txn_time"],
            currency=row["currency"],
            amount_minor=row["amount_minor"],
            member_circle_ids=frozenset(self.circles.get(row["member_id"], ())),
            last_purchase_at=self._last_purchase_before(row),
        )
        cash: list[Award] = []
        points: list[Award] = []
        for benefit in self.benefits.get(row["merchant_id"], ()):
            award = self._award(benefit, row["member_id"], purchase)
            if award is not None:
                (cash if benefit.kind in CASH else points).append(award)
        best_cash = _best(cash)
        best_points = _best(points)
        if best_cash is None and best_points is None:
            return None
        for award in (best_cash, best_points):
            if award is not None:
                self._consume(award)
        return self._record(row, best_cash, best_points)

    def _last_purchase_before(self, row: Row) -> datetime | None:
        """The latest purchase by the member at the merchant before this one in processing order."""
        times = self.history.get((row["member_id"], row["merchant_id"]), [])
        before = bisect.bisect_left(times, (row["txn_time"], row["txn_id"]))
        return times[before - 1][0] if before else None

    def _award(self, benefit: Benefit, member_id: int, purchase: rules.Purchase) -> Award | None:
        if rules.ineligibility(benefit.terms, purchase) is not None:
            return None
        amount = purchase.amount_minor or 0
        key = (
            benefit.id,
            member_id,
            rules.period_key_at(
                benefit.terms.limit_period, purchase.at, benefit.terms.schedule.timezone
            ),
        )
        uses = self.prior_uses[key] + self.uses_added[key]
        if not rules.within_member_limit(benefit.terms.member_limit, uses):
            return None
        quantity_left = _left(benefit.quantity_remaining, self.quantity_taken[benefit.id])
        if benefit.kind == POINTS:
            if not rules.has_room(None, quantity_left):
                return None
            earned = rules.points_earned(amount, purchase.currency, benefit.points_multiplier)
            return Award(benefit, earned, key) if earned > 0 else None
        budget_left = _left(benefit.budget_remaining, self.budget_taken[benefit.id])
        if not rules.has_room(budget_left, quantity_left):
            return None
        reward = rules.reward_minor(benefit.terms.reward, amount)
        if reward <= 0:
            return None
        return Award(benefit, rules.grant_minor(reward, budget_left), key)

    def _consume(self, award: Award) -> None:
        self.uses_added[award.usage_key] += 1
        self.quantity_taken[award.benefit.id] += 1
        self.budget_taken[award.benefit.id] += award.value if award.benefit.kind in CASH else 0

    def _record(self, row: Row, cash: Award | None, points: Award | None) -> Row:
        grant = cash.value if cash is not None else 0
        merchant_funded, bank_funded = (
            rules.funding_split(grant, cash.benefit.merchant_share_bps) if cash else (0, 0)
        )
        # The commission follows the cash benefit; a points-only purchase pays its points benefit's.
        commission_from = cash or points
        assert commission_from is not None
        commission = rules.commission_minor(
            row["amount_minor"], commission_from.benefit.commission_bps
        )
        cash_id = cash.benefit.id if cash else None
        points_id = points.benefit.id if points else None
        points_value = points.value if points else 0
        self.grants[row["txn_id"]] = {
            "txn_id": row["txn_id"],
            "member_id": row["member_id"],
            "merchant_id": row["merchant_id"],
            "currency": row["currency"],
            "purchase_amount_minor": row["amount_minor"],
            "benefit_id": cash_id,
            "reward_minor": grant,
            "merchant_funded_minor": merchant_funded,
            "commission_minor": commission,
            "points_benefit_id": points_id,
            "points": points_value,
            **dict.fromkeys(GRANT_TOTALS, 0),
        }
        return {
            "kind": frames.REWARD,
            "txn_id": row["txn_id"],
            "original_txn_id": None,
            "txn_time": row["txn_time"],
            "member_id": row["member_id"],
            "merchant_id": row["merchant_id"],
            "currency": row["currency"],
            "purchase_amount_minor": row["amount_minor"],
            "txn_amount_minor": row["amount_minor"],
            "benefit_id": cash_id,
            "amount_minor": grant,
            "merchant_funded_minor": merchant_funded,
            "bank_funded_minor": bank_funded,
            "commission_minor": commission,
            "points_benefit_id": points_id,
            "points": points_value,
        }


def _benefit(row: Row, targets: frozenset[int]) -> Benefit | None:
    """The benefit's terms with documented defaults for unset schedule fields; None for kinds
    that earn nothing on a card (gifts, trials, events)."""
    kind = BenefitKind(row["kind"])
    if kind not in CASH and kind != POINTS:
        return None
    weekdays = row["weekdays"]
    schedule = rules.Schedule(
        valid_from=row["valid_from"] or date.min,
        valid_to=row["valid_to"] or date.max,
        weekdays=rules.ALL_WEEKDAYS if weekdays is None else frozenset(weekdays),
        hour_start=_or(row["hour_start"], 0),
        hour_end=_or(row["hour_end"], 24),
        timezone=row["timezone"],
    )
    terms = rules.BenefitTerms(
        id=row["benefit_id"],
        active=bool(row["active"]),
        currency=row["currency"],
        schedule=schedule,
        reward=rules.RewardTerms(
            kind=kind,
            percent_bps=row["percent_bps"],
            max_reward_minor=row["max_reward_minor"],
            fixed_minor=row["fixed_minor"],
            threshold_minor=row["threshold_minor"],
        ),
        min_spend_minor=_or(row["min_spend_minor"], 0),
        target_circle_ids=targets,
        new_to_merchant_days=row["new_to_merchant_days"],
        member_limit=row["member_limit"],
        limit_period=LimitPeriod(row["limit_period"] or LimitPeriod.CAMPAIGN),
    )
    return Benefit(
        terms=terms,
        kind=kind,
        merchant_id=row["merchant_id"],
        points_multiplier=row["points_multiplier"],
        # Points cost the bank no cash: a points benefit has no budget to spend.
        budget_remaining=None if kind == POINTS else row["budget_remaining_minor"],
        quantity_remaining=row["quantity_remaining"],
        merchant_share_bps=_or(row["merchant_share_bps"], 0),
        commission_bps=_or(row["commission_bps"], 0),
    )


def _purchase_history(
    prior: Iterable[Row], purchases: list[Row]
) -> dict[tuple[int, int], list[tuple[datetime, str]]]:
    """Every known purchase's (time, txn_id) per (member, merchant), sorted."""
    history: dict[tuple[int, int], list[tuple[datetime, str]]] = defaultdict(list)
    for row in [*prior, *purchases]:
        history[(row["member_id"], row["merchant_id"])].append((row["txn_time"], row["txn_id"]))
    for times in history.values():
        times.sort()
    return history


def _best(awards: list[Award]) -> Award | None:
    best = rules.best_offer((a.benefit.id, a.value) for a in awards)
    return None if best is None else next(a for a in awards if a.benefit.id == best[0])


def _left(remaining: int | None, taken: int) -> int | None:
    return None if remaining is None else remaining - taken


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


# -- rule 8: refunds and chargebacks ---------------------------------------------------------------


def _normalised_grant(row: Row) -> Row:
    """A prior grant with absent amounts read as zero."""
    ids = ("txn_id", "member_id", "merchant_id", "currency", "benefit_id", "points_benefit_id")
    return {k: (v if k in ids or v is not None else 0) for k, v in row.items()}


def _claw_back(row: Row, grants: Mapping[str, Row], changed: set[str]) -> Row | None:
    """Claw back pro rata from the original's grant (updated in place); the clawback row or None."""
    grant = grants.get(row["original_txn_id"]) if row["original_txn_id"] is not None else None
    if grant is None or grant["currency"] != row["currency"]:
        return None
    refund = row["amount_minor"]
    purchase = grant["purchase_amount_minor"]
    reward = grant["reward_minor"]
    before = grant["clawed_back_minor"]
    cash = _clawed(reward, before, refund, purchase)
    commission = _clawed(
        grant["commission_minor"], grant["commission_clawed_back_minor"], refund, purchase
    )
    points = _clawed(grant["points"], grant["points_clawed_back"], refund, purchase)
    # Cumulative pro rata: the merchant's part of all clawbacks ends exactly at what it funded.
    funded = grant["merchant_funded_minor"]
    merchant = (
        0 if reward == 0 else (funded * (before + cash) // reward - funded * before // reward)
    )

    grant["refunded_minor"] += refund
    grant["clawed_back_minor"] += cash
    grant["merchant_clawed_back_minor"] += merchant
    grant["commission_clawed_back_minor"] += commission
    grant["points_clawed_back"] += points
    changed.add(grant["txn_id"])
    if cash == 0 and commission == 0 and points == 0:
        return None
    return {
        "kind": frames.CLAWBACK,
        "txn_id": row["txn_id"],
        "original_txn_id": grant["txn_id"],
        "txn_time": row["txn_time"],
        "member_id": grant["member_id"],
        "merchant_id": grant["merchant_id"],
        "currency": grant["currency"],
        "purchase_amount_minor": purchase,
        "txn_amount_minor": refund,
        "benefit_id": grant["benefit_id"],
        "amount_minor": cash,
        "merchant_funded_minor": merchant,
        "bank_funded_minor": cash - merchant,
        "commission_minor": commission,
        "points_benefit_id": grant["points_benefit_id"],
        "points": points,
    }


def _clawed(total: int, so_far: int, refund: int, purchase: int) -> int:
    """This refund's pro-rata share of `total`, never past what is left of it."""
    return min(pro_rata(total, refund, purchase), total - so_far)


# -- output ----------------------------------------------------------------------------------------


def _frame(rows: list[Row], schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema) if rows else frames.empty(schema)
