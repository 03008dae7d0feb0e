"""The pure benefit rules: reward, schedule across DST, period keys, eligibility, caps, selection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from beyondbank.benefits import rules
from beyondbank.benefits.models import BenefitKind, LimitPeriod
from beyondbank.benefits.rules import (
    BenefitTerms,
    Purchase,
    Reason,
    RewardTerms,
    Schedule,
)

amounts = st.integers(min_value=0, max_value=10**9)
positive = st.integers(min_value=1, max_value=10**7)
bps = st.integers(min_value=1, max_value=10_000)
zones = st.sampled_from(["Europe/London", "Asia/Shanghai", "America/New_York"])
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=last.isoweekday() % 7)


# The EU changeover days (last Sundays of March and October), drawn often so DST is always hit.
changeovers = st.sampled_from([_last_sunday(y, m) for y in range(2020, 2036) for m in (3, 10)])


def _terms(**over: object) -> BenefitTerms:
    fields: dict[str, object] = {
        "id": 1,
        "active": True,
        "currency": "GBP",
        "schedule": Schedule(date(2026, 1, 1), date(2026, 12, 31)),
        "reward": RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=1000),
    }
    fields.update(over)
    return BenefitTerms(**fields)  # type: ignore[arg-type]


# -- reward ------------------------------------------------------------------------------------


@given(amount=amounts, rate=bps, cap=st.none() | positive)
def test_percent_off_floors_never_exceeds_the_amount_and_respects_the_cap(
    amount: int, rate: int, cap: int | None
) -> None:
    reward = rules.reward_minor(
        RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=rate, max_reward_minor=cap), amount
    )
    exact = amount * rate / 10_000
    assert 0 <= reward <= amount
    if cap is None:
        assert reward == amount * rate // 10_000
        assert reward <= exact < reward + 1  # floored: within one minor unit, never above
    else:
        assert reward == min(amount * rate // 10_000, cap)
        assert reward <= cap


@given(amount=amounts, more=amounts, rate=bps, cap=st.none() | positive)
def test_percent_off_never_shrinks_as_the_amount_grows(
    amount: int, more: int, rate: int, cap: int | None
) -> None:
    terms = RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=rate, max_reward_minor=cap)
    assert rules.reward_minor(terms, amount) <= rules.reward_minor(terms, amount + more)


@given(amount=amounts, fixed=positive)
def test_amount_off_is_the_fixed_amount_or_the_whole_purchase(amount: int, fixed: int) -> None:
    reward = rules.reward_minor(RewardTerms(BenefitKind.AMOUNT_OFF, fixed_minor=fixed), amount)
    assert reward == min(fixed, amount)
    assert 0 <= reward <= amount


@given(amount=amounts, threshold=positive, data=st.data())
def test_spend_threshold_pays_the_fixed_amount_from_the_threshold_on(
    amount: int, threshold: int, data: st.DataObject
) -> None:
    fixed = data.draw(
        st.integers(min_value=1, max_value=threshold)
    )  # validation: fixed ≤ threshold
    terms = RewardTerms(BenefitKind.SPEND_THRESHOLD, threshold_minor=threshold, fixed_minor=fixed)
    reward = rules.reward_minor(terms, amount)
    assert reward == (fixed if amount >= threshold else 0)
    assert 0 <= reward <= amount


@pytest.mark.parametrize(
    "kind",
    [BenefitKind.POINTS_MULTIPLIER, BenefitKind.GIFT, BenefitKind.FREE_TRIAL, BenefitKind.EVENT],
)
def test_non_cash_kinds_give_no_cash_reward(kind: BenefitKind) -> None:
    assert rules.reward_minor(RewardTerms(kind), 12_345) == 0


def test_reward_examples() -> None:
    ten_percent = RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=1000, max_reward_minor=500)
    assert rules.reward_minor(ten_percent, 999) == 99  # £9.99 → 99.9p, floored
    assert rules.reward_minor(ten_percent, 10_000) == 500  # capped at £5
    assert rules.reward_minor(RewardTerms(BenefitKind.AMOUNT_OFF, fixed_minor=500), 300) == 300
    with pytest.raises(ValueError, match="never negative"):
        rules.reward_minor(ten_percent, -1)


@given(reward=amounts, budget=st.none() | amounts)
def test_grant_is_the_reward_limited_by_the_remaining_budget(
    reward: int, budget: int | None
) -> None:
    grant = rules.grant_minor(reward, budget)
    assert grant == (reward if budget is None else min(reward, budget))
    assert 0 <= grant <= reward


@given(offers=st.lists(st.tuples(st.integers(1, 50), amounts), max_size=20))
def test_best_offer_is_the_largest_reward_with_ties_to_the_lowest_id(
    offers: list[tuple[int, int]],
) -> None:
    best = rules.best_offer(offers)
    if not offers:
        assert best is None
        return
    assert best is not None
    top = max(r for _, r in offers)
    assert best == (min(i for i, r in offers if r == top), top)


@given(grant=amounts, share=st.integers(0, 10_000))
def test_funding_split_adds_up_and_the_merchant_share_rounds_down(grant: int, share: int) -> None:
    merchant, bank = rules.funding_split(grant, share)
    assert merchant + bank == grant
    assert merchant == grant * share // 10_000


# -- schedule ----------------------------------------------------------------------------------


def _open_minutes(schedule: Schedule, local_day: date, zone: str) -> int:
    """Minutes of real (UTC) time during which the schedule is open on one local date."""
    tz = rules.zone(zone)
    start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=tz).astimezone(UTC)
    following = local_day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)
    step = timedelta(minutes=15)  # zone changes fall on quarter hours
    minutes, at = 0, start
    while at < end:
        minutes += 15 if rules.is_open(schedule, at) else 0
        at += step
    return minutes


def _local_day_length_hours(local_day: date, zone: str) -> int:
    tz = rules.zone(zone)
    following = local_day + timedelta(days=1)
    start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=tz)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    return int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()) // 3600


@given(day=days, start=st.integers(0, 23), data=st.data())
def test_shanghai_windows_are_always_their_length_in_real_time(
    day: date, start: int, data: st.DataObject
) -> None:
    end = data.draw(st.integers(start + 1, 24))
    schedule = Schedule(day, day, hour_start=start, hour_end=end, timezone="Asia/Shanghai")
    assert _open_minutes(schedule, day, "Asia/Shanghai") == (end - start) * 60


@given(day=days | changeovers, start=st.integers(0, 23), data=st.data())
def test_london_windows_follow_the_wall_clock_across_dst(
    day: date, start: int, data: st.DataObject
) -> None:
    """On a normal day a window lasts its hours; on the changeover days the 01:00 hour is
    skipped (spring) or lived twice (autumn), and only a window covering it notices."""
    end = data.draw(st.integers(start + 1, 24))
    schedule = Schedule(day, day, hour_start=start, hour_end=end, timezone="Europe/London")
    extra_hours = _local_day_length_hours(day, "Europe/London") - 24  # -1, 0 or +1
    covers_changeover = start <= 1 < end
    expected = (end - start + (extra_hours if covers_changeover else 0)) * 60
    assert _open_minutes(schedule, day, "Europe/London") == expected


def test_london_changeover_days_2026() -> None:
    assert _local_day_length_hours(date(2026, 3, 29), "Europe/London") == 23
    assert _local_day_length_hours(date(2026, 10, 25), "Europe/London") == 25
    one_am = Schedule(date(2026, 1, 1), date(2026, 12, 31), hour_start=1, hour_end=2)
    assert _open_minutes(one_am, date(2026, 3, 29), "Europe/London") == 0
    assert _open_minutes(one_am, date(2026, 10, 25), "Europe/London") == 120
    # 00:30 UTC on 29 March is 00:30 GMT; 01:30 UTC is 02:30 BST: the 01:00 hour never happens.
    assert not rules.is_open(one_am, datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    # Both 01:30s of 25 October are in the window: 00:30 UTC (BST) and 01:30 UTC (GMT).
    assert rules.is_open(one_am, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert rules.is_open(one_am, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


@given(
    zone=zones,
    day=st.dates(min_value=date(2026, 1, 2), max_value=date(2026, 12, 30))
    | st.sampled_from([date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 8)]),
    start=st.integers(1, 22),
    length=st.integers(1, 22),
)
def test_hour_window_includes_its_start_and_excludes_its_end(
    zone: str, day: date, start: int, length: int
) -> None:
    end = min(start + length, 24)
    schedule = Schedule(
        date(2026, 1, 1), date(2026, 12, 31), hour_start=start, hour_end=end, timezone=zone
    )
    tz = rules.zone(zone)
    at_start = datetime(day.year, day.month, day.day, start, tzinfo=tz)
    # Skip wall-clock times that a DST change makes not exist (they are never a local time).
    assume(at_start.astimezone(UTC).astimezone(tz).hour == start)
    assert rules.is_open(schedule, at_start)
    assert not rules.is_open(schedule, at_start - timedelta(seconds=1))
    if end < 24:
        at_end = datetime(day.year, day.month, day.day, end, tzinfo=tz)
        assume(at_end.astimezone(UTC).astimezone(tz).hour == end)
        assert not rules.is_open(schedule, at_end)
        assert rules.is_open(schedule, at_end - timedelta(seconds=1))


def test_dates_and_weekdays_are_read_in_the_benefits_zone() -> None:
    # Sunday 22 Nov 23:30 UTC is already Monday 07:30 in Shanghai.
    late_sunday = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    weekdays_only = Schedule(
        date(2026, 11, 23), date(2026, 11, 30), weekdays=frozenset({1, 2, 3, 4, 5})
    )
    shanghai = Schedule(
        date(2026, 11, 23),
        date(2026, 11, 30),
        weekdays=frozenset({1, 2, 3, 4, 5}),
        timezone="Asia/Shanghai",
    )
    failure = rules.schedule_failure(weekdays_only, late_sunday)
    assert failure is not None
    assert failure.reason == Reason.NOT_STARTED
    assert rules.is_open(shanghai, late_sunday)
    assert rules.schedule_failure(shanghai, datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == (
        rules.Ineligibility(Reason.OVER, "The benefit ended on 2026-11-30.")
    )
    sunday = rules.schedule_failure(weekdays_only, datetime(2026, 11, 29, 12, tzinfo=UTC))
    assert sunday is not None
    assert sunday.reason == Reason.WEEKDAY
    assert "Mon, Tue, Wed, Thu, Fri" in sunday.message


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        rules.local_time(datetime(2026, 1, 1), "Europe/London")


# -- period keys -------------------------------------------------------------------------------


@given(day=days)
def test_week_keys_follow_iso_weeks_across_year_ends(day: date) -> None:
    key = rules.period_key(LimitPeriod.WEEK, day)
    iso_year, week, weekday = day.isocalendar()
    assert key == f"{iso_year}-W{week:02d}"
    monday = day - timedelta(days=weekday - 1)
    # Every day of the same Monday-to-Sunday week shares the key; the next week does not.
    for offset in range(7):
        assert rules.period_key(LimitPeriod.WEEK, monday + timedelta(days=offset)) == key
    assert rules.period_key(LimitPeriod.WEEK, monday + timedelta(days=7)) != key
    assert len(key) <= 16


@given(day=days)
def test_day_and_month_keys(day: date) -> None:
    assert rules.period_key(LimitPeriod.DAY, day) == day.isoformat()
    assert rules.period_key(LimitPeriod.MONTH, day) == day.strftime("%Y-%m")
    assert rules.period_key(LimitPeriod.CAMPAIGN, day) == "campaign"


def test_week_key_examples_at_year_boundaries() -> None:
    assert rules.period_key(LimitPeriod.WEEK, date(2026, 12, 31)) == "2026-W53"
    assert rules.period_key(LimitPeriod.WEEK, date(2027, 1, 3)) == "2026-W53"
    assert rules.period_key(LimitPeriod.WEEK, date(2027, 1, 4)) == "2027-W01"
    assert rules.period_key(LimitPeriod.WEEK, date(2024, 12, 30)) == "2025-W01"


def test_period_keys_use_local_time() -> None:
    # 23:30 UTC on 30 Nov is 1 December in Shanghai: a new month there, not in London.
    at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert rules.period_key_at(LimitPeriod.MONTH, at, "Europe/London") == "2026-11"
    assert rules.period_key_at(LimitPeriod.MONTH, at, "Asia/Shanghai") == "2026-12"
    assert rules.period_key_at(LimitPeriod.DAY, at, "Asia/Shanghai") == "2026-12-01"


@given(limit=st.none() | st.integers(1, 10), uses=st.integers(0, 20))
def test_member_limit(limit: int | None, uses: int) -> None:
    assert rules.within_member_limit(limit, uses) == (limit is None or uses < limit)


# -- eligibility -------------------------------------------------------------------------------

NOON = datetime(2026, 6, 10, 11, 0, tzinfo=UTC)  # a Wednesday, 12:00 in London


def _purchase(**over: object) -> Purchase:
    fields: dict[str, object] = {"at": NOON, "currency": "GBP", "amount_minor": 2000}
    fields.update(over)
    return Purchase(**fields)  # type: ignore[arg-type]


def test_an_ordinary_purchase_is_eligible() -> None:
    assert rules.is_eligible(_terms(), _purchase())


@pytest.mark.parametrize(
    ("terms", "purchase", "reason"),
    [
        (_terms(active=False), _purchase(), Reason.NOT_ACTIVE),
        (_terms(), _purchase(currency="EUR"), Reason.CURRENCY),
        (_terms(min_spend_minor=2001), _purchase(), Reason.MIN_SPEND),
        (_terms(min_spend_minor=1), _purchase(amount_minor=None), Reason.MIN_SPEND),
        (_terms(target_circle_ids=frozenset({7})), _purchase(), Reason.NOT_TARGETED),
        (
            _terms(target_circle_ids=frozenset({7})),
            _purchase(member_circle_ids=frozenset({8})),
            Reason.NOT_TARGETED,
        ),
        (
            _terms(new_to_merchant_days=30),
            _purchase(last_purchase_at=NOON - timedelta(days=29)),
            Reason.NOT_NEW,
        ),
        (
            _terms(schedule=Schedule(date(2026, 1, 1), date(2026, 12, 31), hour_start=13)),
            _purchase(),
            Reason.HOURS,
        ),
    ],
)
def test_each_eligibility_rule_refuses_with_its_reason(
    terms: BenefitTerms, purchase: Purchase, reason: Reason
) -> None:
    failure = rules.ineligibility(terms, purchase)
    assert failure is not None
    assert failure.reason == reason
    assert failure.message


def test_targeting_and_new_to_merchant_pass_when_met() -> None:
    targeted = _terms(target_circle_ids=frozenset({7, 9}), new_to_merchant_days=30)
    assert rules.is_eligible(
        targeted,
        _purchase(member_circle_ids=frozenset({9, 11}), last_purchase_at=NOON - timedelta(days=31)),
    )
    assert rules.is_eligible(targeted, _purchase(member_circle_ids=frozenset({7})))


def test_minimum_spend_is_inclusive() -> None:
    assert rules.is_eligible(_terms(min_spend_minor=2000), _purchase(amount_minor=2000))


def test_room_left() -> None:
    assert rules.has_room(None, None)
    assert rules.has_room(1, 1)
    assert not rules.has_room(0, None)
    assert not rules.has_room(None, 0)


def test_describe_reward() -> None:
    assert (
        rules.describe_reward(
            RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=1250, max_reward_minor=500), "GBP"
        )
        == "12.5% off, up to £5.00"
    )
    assert (
        rules.describe_reward(
            RewardTerms(BenefitKind.SPEND_THRESHOLD, threshold_minor=5000, fixed_minor=1000), "GBP"
        )
        == "Spend £50.00, get £10.00 off"
    )
    assert rules.describe_reward(RewardTerms(BenefitKind.FREE_TRIAL), "GBP") == "Free trial"


def test_kind_fields() -> None:
    assert rules.kind_field_problem(BenefitKind.PERCENT_OFF, "percent_bps", None) == (
        "required for percent_off benefits"
    )
    assert rules.kind_field_problem(BenefitKind.AMOUNT_OFF, "percent_bps", 100) == (
        "not used by amount_off benefits"
    )
    assert rules.kind_field_problem(BenefitKind.GIFT, "budget_minor", 100) is not None
    assert rules.kind_field_problem(BenefitKind.GIFT, "publicly_available", None) is not None
    assert rules.kind_field_problem(BenefitKind.GIFT, "publicly_available", False) is None
    assert rules.needs_amount(BenefitKind.GIFT, 0) is False
    assert rules.needs_amount(BenefitKind.GIFT, 500) is True
    assert rules.needs_amount(BenefitKind.AMOUNT_OFF, 0) is True
