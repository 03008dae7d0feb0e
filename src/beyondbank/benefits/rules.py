"""Benefit rules as pure functions over plain data: schedule, periods, eligibility, reward, caps, selection.

These implement DESIGN.md's "Card-linked matching rules (normative)" and are the reference the
voucher counter and the card-linked engine share. Nothing here touches a database or a clock:
callers pass the instant, the member's circles and the counters they hold.

Meanings, rule by rule:

- Schedule (rule 4): the benefit's local date (in its IANA time zone) is within
  `valid_from..valid_to` inclusive, the local ISO weekday (1 = Monday) is in `weekdays`, and
  the local hour is within `[hour_start, hour_end)`. Local time is derived from the UTC
  instant, so times skipped by a daylight-saving change never occur and repeated ones are
  judged by their wall-clock hour each time.
- Reward (rule 5), floored to the minor unit: `percent_off` → `amount × bps / 10000` capped at
  `max_reward`; `amount_off` → `min(fixed, amount)`; `spend_threshold` → `fixed` when
  `amount >= threshold`, else nothing. Points, gifts, trials and events give no cash reward.
- Caps (rule 6): at most `member_limit` rewards per member per period (local day, ISO week,
  calendar month, or the whole campaign); the grant is `min(reward, remaining budget)`, and a
  benefit with no budget (or quantity) left is not eligible.
- Selection (rule 7): among eligible offers, the largest reward; ties go to the lowest id.
- Funding and commission (rule 9): the merchant funds `floor(grant × share / 10000)`, the bank
  the rest; the bank's commission is `floor(amount × commission_bps / 10000)`.
- Stacking: an `exclusive` benefit is not combined with the merchant's other offers on the
  same purchase; a `stackable` one may be. Whatever it says, a purchase gets at most one cash
  reward (rule 7), and at the counter one member code redeems one benefit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beyondbank.benefits.models import CASH_KINDS, BenefitKind, LimitPeriod
from beyondbank.core.i18n import N_, _, format_locale
from beyondbank.core.money import Money, bps_of, minor_digits, split_bps

ALL_WEEKDAYS = frozenset(range(1, 8))
# The names are translated where they are shown, in the viewer's language.
WEEKDAY_NAMES = {
    1: N_("Mon"),
    2: N_("Tue"),
    3: N_("Wed"),
    4: N_("Thu"),
    5: N_("Fri"),
    6: N_("Sat"),
    7: N_("Sun"),
}
CAMPAIGN_KEY = "campaign"


# -- plain data ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    valid_from: date
    valid_to: date
    weekdays: frozenset[int] = ALL_WEEKDAYS  # ISO weekdays, 1 = Monday … 7 = Sunday
    hour_start: int = 0
    hour_end: int = 24
    timezone: str = "Europe/London"


@dataclass(frozen=True, slots=True)
class RewardTerms:
    kind: BenefitKind
    percent_bps: int | None = None
    max_reward_minor: int | None = None
    fixed_minor: int | None = None
    threshold_minor: int | None = None


@dataclass(frozen=True, slots=True)
class BenefitTerms:
    """What the rules need to know about one benefit."""

    id: int
    active: bool
    currency: str
    schedule: Schedule
    reward: RewardTerms
    min_spend_minor: int = 0
    target_circle_ids: frozenset[int] = frozenset()
    new_to_merchant_days: int | None = None
    member_limit: int | None = None
    limit_period: LimitPeriod = LimitPeriod.CAMPAIGN


@dataclass(frozen=True, slots=True)
class Purchase:
    """One purchase (or one visit at the counter) by a member at the benefit's merchant."""

    at: datetime  # timezone-aware instant
    currency: str
    amount_minor: int | None  # None when the counter did not enter an amount (a gift, an event)
    member_circle_ids: frozenset[int] = frozenset()
    # The member's latest earlier purchase at this merchant that the platform has seen.
    last_purchase_at: datetime | None = None


class Reason(StrEnum):
    NOT_ACTIVE = "not_active"
    NOT_STARTED = "not_started"
    OVER = "over"
    WEEKDAY = "weekday"
    HOURS = "hours"
    CURRENCY = "currency"
    MIN_SPEND = "min_spend"
    NOT_TARGETED = "not_targeted"
    NOT_NEW = "not_new_to_merchant"


@dataclass(frozen=True, slots=True)
class Ineligibility:
    reason: Reason
    message: str


# -- time and schedule --------------------------------------------------------------------


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_timezone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_time(at: datetime, timezone: str) -> datetime:
    """The wall-clock time in `timezone` at the instant `at`."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware instant")
    return at.astimezone(zone(timezone))


def schedule_failure(schedule: Schedule, at: datetime) -> Ineligibility | None:
    """Why the schedule is closed at `at`, or None when it is open."""
    local = local_time(at, schedule.timezone)
    today = local.date()
    if today < schedule.valid_from:
        return Ineligibility(
            Reason.NOT_STARTED, _("The benefit starts on %(day)s.", day=schedule.valid_from)
        )
    if today > schedule.valid_to:
        return Ineligibility(Reason.OVER, _("The benefit ended on %(day)s.", day=schedule.valid_to))
    if local.isoweekday() not in schedule.weekdays:
        return Ineligibility(
            Reason.WEEKDAY,
            _(
                "The benefit applies on %(weekdays)s, not on %(weekday)s.",
                weekdays=describe_weekdays(schedule.weekdays),
                weekday=_(WEEKDAY_NAMES[local.isoweekday()]),
            ),
        )
    if not schedule.hour_start <= local.hour < schedule.hour_end:
        return Ineligibility(
            Reason.HOURS,
            _(
                "The benefit applies from %(hours)s (%(timezone)s); it is %(time)s there now.",
                hours=describe_hours(schedule),
                timezone=schedule.timezone,
                time=f"{local:%H:%M}",
            ),
        )
    return None


def is_open(schedule: Schedule, at: datetime) -> bool:
    return schedule_failure(schedule, at) is None


def describe_weekdays(weekdays: Iterable[int]) -> str:
    days = sorted(set(weekdays))
    if days == sorted(ALL_WEEKDAYS):
        return _("every day")
    return _(", ").join(_(WEEKDAY_NAMES[d]) for d in days)


def describe_hours(schedule: Schedule) -> str:
    return _(
        "%(start)s to %(end)s",
        start=f"{schedule.hour_start:02d}:00",
        end=f"{schedule.hour_end:02d}:00",
    )


# -- limit periods ------------------------------------------------------------------------


def period_key(period: LimitPeriod, local_day: date) -> str:
    """The key of the limit period holding a local date: `2026-11-22`, `2026-W47`, `2026-11`."""
    if period == LimitPeriod.DAY:
        return local_day.isoformat()
    if period == LimitPeriod.WEEK:
        iso_year, week, _weekday = local_day.isocalendar()
        return f"{iso_year:04d}-W{week:02d}"
    if period == LimitPeriod.MONTH:
        return f"{local_day.year:04d}-{local_day.month:02d}"
    return CAMPAIGN_KEY


def period_key_at(period: LimitPeriod, at: datetime, timezone: str) -> str:
    return period_key(period, local_time(at, timezone).date())


def within_member_limit(member_limit: int | None, uses_in_period: int) -> bool:
    """May the member be rewarded once more in this period?"""
    return member_limit is None or uses_in_period < member_limit


# -- eligibility --------------------------------------------------------------------------


def ineligibility(terms: BenefitTerms, purchase: Purchase) -> Ineligibility | None:
    """The first reason (in DESIGN rule 4's order) the purchase is not eligible, or None.

    Caps (member limit, budget, quantity) are counters the caller holds: see
    `within_member_limit` and `grant_minor`.
    """
    if not terms.active:
        return Ineligibility(Reason.NOT_ACTIVE, _("The benefit is not active."))
    closed = schedule_failure(terms.schedule, purchase.at)
    if closed is not None:
        return closed
    if purchase.currency != terms.currency:
        return Ineligibility(
            Reason.CURRENCY,
            _(
                "The benefit is in %(currency)s; the purchase is in %(purchase_currency)s.",
                currency=terms.currency,
                purchase_currency=purchase.currency,
            ),
        )
    spend = _spend_failure(terms, purchase.amount_minor)
    if spend is not None:
        return spend
    if terms.target_circle_ids and not terms.target_circle_ids & purchase.member_circle_ids:
        return Ineligibility(
            Reason.NOT_TARGETED, _("The benefit is for members of other circles or segments.")
        )
    return _new_to_merchant_failure(terms, purchase)


def is_eligible(terms: BenefitTerms, purchase: Purchase) -> bool:
    return ineligibility(terms, purchase) is None


def _spend_failure(terms: BenefitTerms, amount: int | None) -> Ineligibility | None:
    if terms.min_spend_minor <= 0:
        return None
    minimum = Money(terms.min_spend_minor, terms.currency).format(format_locale())
    if amount is None:
        return Ineligibility(
            Reason.MIN_SPEND,
            _(
                "The benefit needs a spend of at least %(minimum)s: enter the amount.",
                minimum=minimum,
            ),
        )
    if amount < terms.min_spend_minor:
        spent = Money(amount, terms.currency).format(format_locale())
        return Ineligibility(
            Reason.MIN_SPEND,
            _(
                "The benefit needs a spend of at least %(minimum)s; this is %(spent)s.",
                minimum=minimum,
                spent=spent,
            ),
        )
    return None


def _new_to_merchant_failure(terms: BenefitTerms, purchase: Purchase) -> Ineligibility | None:
    days = terms.new_to_merchant_days
    last = purchase.last_purchase_at
    # "In the N days before": any earlier purchase in the N×24 hours up to this one.
    if days is None or last is None or last < purchase.at - timedelta(days=days):
        return None
    if last > purchase.at:
        return None  # only purchases before this one count
    return Ineligibility(
        Reason.NOT_NEW,
        _(
            "The benefit is for members new to the merchant: none in the last %(days)s days.",
            days=days,
        ),
    )


# -- reward, caps, selection, funding ---------------------------------------------------------


def reward_minor(reward: RewardTerms, amount_minor: int) -> int:
    """The cash reward on a purchase of `amount_minor` (DESIGN rule 5); 0 for non-cash kinds."""
    if amount_minor < 0:
        raise ValueError("a purchase amount is never negative")
    if reward.kind == BenefitKind.PERCENT_OFF:
        value = bps_of(amount_minor, _required(reward.percent_bps, "percent_bps"))
        cap = reward.max_reward_minor
        return value if cap is None else min(value, cap)
    if reward.kind == BenefitKind.AMOUNT_OFF:
        return min(_required(reward.fixed_minor, "fixed_minor"), amount_minor)
    if reward.kind == BenefitKind.SPEND_THRESHOLD:
        threshold = _required(reward.threshold_minor, "threshold_minor")
        return _required(reward.fixed_minor, "fixed_minor") if amount_minor >= threshold else 0
    return 0


def is_cash(kind: BenefitKind) -> bool:
    return kind in CASH_KINDS


def grant_minor(reward: int, budget_remaining: int | None) -> int:
    """What is actually granted: the reward, limited by what is left of the budget (if any)."""
    if reward < 0:
        raise ValueError("a reward is never negative")
    return reward if budget_remaining is None else max(0, min(reward, budget_remaining))


def has_room(budget_remaining: int | None, quantity_remaining: int | None) -> bool:
    """A benefit with no budget or no quantity left is not eligible."""
    return (budget_remaining is None or budget_remaining > 0) and (
        quantity_remaining is None or quantity_remaining > 0
    )


def best_offer(offers: Iterable[tuple[int, int]]) -> tuple[int, int] | None:
    """Of (benefit id, reward) pairs, the largest reward; ties go to the lowest benefit id."""
    best: tuple[int, int] | None = None
    for benefit_id, reward in offers:
        if best is None or reward > best[1] or (reward == best[1] and benefit_id < best[0]):
            best = (benefit_id, reward)
    return best


def funding_split(grant: int, merchant_share_bps: int) -> tuple[int, int]:
    """(merchant funds, bank funds): the merchant's share rounds down, the bank takes the rest."""
    return split_bps(grant, merchant_share_bps)


def commission_minor(amount_minor: int | None, commission_bps: int) -> int:
    return 0 if amount_minor is None else bps_of(amount_minor, commission_bps)


def points_earned(amount_minor: int | None, currency: str, multiplier: int | None) -> int:
    """Points for a purchase under a points multiplier: one base point per whole unit of the
    currency (floored), times the multiplier. No amount or no multiplier earns nothing."""
    if amount_minor is None or not multiplier:
        return 0
    return amount_minor // int(10 ** minor_digits(currency)) * multiplier


def describe_reward(reward: RewardTerms, currency: str) -> str:
    """The reward in words, as the viewer reads it in their language: "10% off, up to £5.00"."""
    locale = format_locale()
    if reward.kind == BenefitKind.PERCENT_OFF:
        percent = _percent(_required(reward.percent_bps, "percent_bps"))
        if reward.max_reward_minor is not None:
            return _(
                "%(percent)s off, up to %(most)s",
                percent=percent,
                most=Money(reward.max_reward_minor, currency).format(locale),
            )
        return _("%(percent)s off", percent=percent)
    if reward.kind == BenefitKind.AMOUNT_OFF:
        fixed = Money(_required(reward.fixed_minor, "fixed_minor"), currency).format(locale)
        return _("%(amount)s off", amount=fixed)
    if reward.kind == BenefitKind.SPEND_THRESHOLD:
        spend = Money(_required(reward.threshold_minor, "threshold_minor"), currency).format(locale)
        get = Money(_required(reward.fixed_minor, "fixed_minor"), currency).format(locale)
        return _("Spend %(spend)s, get %(amount)s off", spend=spend, amount=get)
    return _(_OTHER_REWARDS[reward.kind])


# The rewards that are not an amount, in words (translated where they are shown).
_OTHER_REWARDS = {
    BenefitKind.POINTS_MULTIPLIER: N_("Points multiplier"),
    BenefitKind.GIFT: N_("Gift"),
    BenefitKind.FREE_TRIAL: N_("Free trial"),
    BenefitKind.EVENT: N_("Event"),
}


def _percent(bps: int) -> str:
    whole, rest = divmod(bps, 100)
    return f"{whole}%" if rest == 0 else f"{bps / 100:g}%"


def _required(value: int | None, name: str) -> int:
    if value is None:
        raise ValueError(f"{name} is required for this kind of benefit")
    return value


# -- which fields each kind uses ------------------------------------------------------------

PRICE_FIELDS = ("regular_price_minor", "public_price_minor", "public_discount_bps")
# Fields whose meaning depends on the kind; every other field applies to every kind.
KIND_FIELDS: dict[BenefitKind, frozenset[str]] = {
    BenefitKind.PERCENT_OFF: frozenset({"percent_bps", "max_reward_minor"}),
    BenefitKind.AMOUNT_OFF: frozenset({"fixed_minor"}),
    BenefitKind.SPEND_THRESHOLD: frozenset({"threshold_minor", "fixed_minor"}),
    BenefitKind.POINTS_MULTIPLIER: frozenset({"points_multiplier"}),
    BenefitKind.GIFT: frozenset(),
    BenefitKind.FREE_TRIAL: frozenset(),
    BenefitKind.EVENT: frozenset(),
}
KIND_REQUIRED: dict[BenefitKind, frozenset[str]] = {
    BenefitKind.PERCENT_OFF: frozenset({"percent_bps"}),
    BenefitKind.AMOUNT_OFF: frozenset({"fixed_minor"}),
    BenefitKind.SPEND_THRESHOLD: frozenset({"threshold_minor", "fixed_minor"}),
    BenefitKind.POINTS_MULTIPLIER: frozenset({"points_multiplier"}),
    BenefitKind.GIFT: frozenset({"offer_details"}),
    BenefitKind.FREE_TRIAL: frozenset({"offer_details"}),
    BenefitKind.EVENT: frozenset({"offer_details"}),
}
KIND_SPECIFIC = frozenset().union(*KIND_FIELDS.values())


def kind_field_problem(kind: BenefitKind, field: str, value: object) -> str | None:
    """What is wrong with `field` holding `value` for a benefit of `kind`, or None.

    Reward terms belong to their kind; a cash budget only means something for cash kinds
    (gifts, trials and events count by quantity); price kinds declare the public price of the
    same goods, other kinds declare whether everyone can have the same thing.
    """
    if field in KIND_REQUIRED[kind] and value is None:
        return _("required for %(kind)s benefits", kind=kind.value)
    if field in KIND_SPECIFIC and field not in KIND_FIELDS[kind] and value is not None:
        return _("not used by %(kind)s benefits", kind=kind.value)
    if field == "budget_minor" and value is not None and not is_cash(kind):
        return _(
            "a %(kind)s benefit gives no cash reward: limit it by quantity instead", kind=kind.value
        )
    if field == "regular_price_minor" and value is None and is_cash(kind):
        return _("declare the regular price of the goods the benefit applies to")
    if field in PRICE_FIELDS and value is not None and not is_cash(kind):
        return _(
            "only price benefits declare prices; say whether a %(kind)s is publicly_available",
            kind=kind.value,
        )
    if field == "publicly_available" and value is None and not is_cash(kind):
        return _(
            "declare whether everyone can get the same %(kind)s without being a member",
            kind=kind.value,
        )
    if field == "publicly_available" and value is True and is_cash(kind):
        return _("a price benefit declares public_price_minor or public_discount_bps instead")
    return None


def needs_amount(kind: BenefitKind, min_spend_minor: int) -> bool:
    """Does the counter have to enter the purchase amount to redeem this benefit?"""
    return is_cash(kind) or min_spend_minor > 0
