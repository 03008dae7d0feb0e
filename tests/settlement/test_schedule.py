"""Period boundaries: calendar months, ISO weeks and blocks of days, at local midnight in the
party's time zone, across clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from beyondbank.settlement import schedule
from beyondbank.settlement.models import Frequency
from beyondbank.settlement.schedule import Schedule


def test_monthly_periods_are_calendar_months_the_first_from_the_start() -> None:
    plan = Schedule(date(2026, 1, 15), Frequency.MONTH, timezone="Europe/London")
    due = schedule.periods_until(plan, None, datetime(2026, 4, 1, tzinfo=UTC))
    assert due == [
        (date(2026, 1, 15), date(2026, 2, 1)),
        (date(2026, 2, 1), date(2026, 3, 1)),
        (date(2026, 3, 1), date(2026, 4, 1)),
        (date(2026, 4, 1), date(2026, 5, 1)),  # started at midnight: due
    ]


def test_weekly_periods_are_iso_weeks() -> None:
    plan = Schedule(date(2026, 10, 1), Frequency.WEEK)  # a Thursday
    due = schedule.periods_until(plan, None, datetime(2026, 10, 12, tzinfo=UTC))
    assert due == [
        (date(2026, 10, 1), date(2026, 10, 5)),  # Thursday to Sunday
        (date(2026, 10, 5), date(2026, 10, 12)),
        (date(2026, 10, 12), date(2026, 10, 19)),
    ]


def test_periods_of_days_count_from_the_start() -> None:
    plan = Schedule(date(2026, 12, 30), Frequency.DAYS, period_days=10)
    assert schedule.period_containing(plan, date(2027, 1, 20)) == (
        date(2027, 1, 19),
        date(2027, 1, 29),
    )


def test_periods_follow_on_from_the_last_one() -> None:
    plan = Schedule(date(2026, 1, 1), Frequency.MONTH)
    assert schedule.periods_until(plan, date(2026, 3, 1), datetime(2026, 3, 31, tzinfo=UTC)) == [
        (date(2026, 3, 1), date(2026, 4, 1))
    ]
    assert schedule.periods_until(plan, date(2026, 4, 1), datetime(2026, 3, 31, tzinfo=UTC)) == []


def test_boundaries_are_local_midnights_across_clock_changes() -> None:
    # London: BST until 25 October 2026, GMT after.
    assert schedule.local_midnight(date(2026, 10, 1), "Europe/London") == datetime(
        2026, 9, 30, 23, 0, tzinfo=UTC
    )
    assert schedule.local_midnight(date(2026, 11, 1), "Europe/London") == datetime(
        2026, 11, 1, 0, 0, tzinfo=UTC
    )
    # Shanghai never changes: 16:00 UTC the day before.
    assert schedule.local_midnight(date(2026, 11, 1), "Asia/Shanghai") == datetime(
        2026, 10, 31, 16, 0, tzinfo=UTC
    )
    # Santiago skips midnight when its clocks go forward (6 September 2026): the day starts
    # at 01:00 local, 04:00 UTC, and the boundary is that instant.
    assert schedule.local_midnight(date(2026, 9, 6), "America/Santiago") == datetime(
        2026, 9, 6, 4, 0, tzinfo=UTC
    )


def test_a_period_before_the_start_and_unknown_zones_are_refused() -> None:
    plan = Schedule(date(2026, 1, 1), Frequency.MONTH)
    with pytest.raises(ValueError, match="before the contract starts"):
        schedule.period_containing(plan, date(2025, 12, 31))
    with pytest.raises(ValueError, match="unknown time zone"):
        schedule.zone("Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="period_days"):
        Schedule(date(2026, 1, 1), Frequency.DAYS)
    with pytest.raises(ValueError, match="period_days"):
        Schedule(date(2026, 1, 1), Frequency.MONTH, period_days=7)


def test_weekly_shares_of_a_monthly_fee() -> None:
    # October 2026 has 31 days: weeks starting 28 Sep (4 days in October), 5, 12, 19 (7 each),
    # 26 Oct (6 days). 3,100 × d / 31: 400, 700, 700, 700, and the last takes the rest: 600.
    plan = Schedule(date(2026, 1, 5), Frequency.WEEK)
    parts = schedule.month_allocation(3_100, plan, date(2026, 10, 1))
    assert parts == [
        (date(2026, 9, 28), 400),
        (date(2026, 10, 5), 700),
        (date(2026, 10, 12), 700),
        (date(2026, 10, 19), 700),
        (date(2026, 10, 26), 600),
    ]
    # The week of 28 September also holds 3 of September's 30 days and its last one: September
    # floors to 620 + 723 × 3 + 310 = 3,099, so that week takes the remainder: 311.
    assert schedule.month_allocation(3_100, plan, date(2026, 9, 1))[-1] == (date(2026, 9, 28), 311)
    assert schedule.period_share(3_100, plan, date(2026, 9, 28), date(2026, 10, 5)) == 311 + 400
