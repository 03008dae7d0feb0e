"""Settlement calendars, as pure functions: period boundaries and monthly amounts shared out.

Periods tile the days from the contract's start with no gap: calendar months (the default),
ISO weeks, or blocks of N days from the start. The first period starts on the contract's start
day, so it may be shorter than the rest. Boundaries are local midnights in the contract's time
zone, stored as UTC instants.

A contract's monthly amounts (the minimum fee, the sales-tier thresholds) are shared out over
the periods that cover each calendar month, in proportion to the days each covers, rounded
down, with the remainder to the period holding the month's last day; the days of a month
before the contract started are not billed. So the periods of any month always add up to
exactly the monthly amount, whatever the frequency (property-tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beyondbank.core.i18n import _
from beyondbank.core.money import allocate
from beyondbank.settlement.models import Frequency


@dataclass(frozen=True, slots=True)
class Schedule:
    starts_on: date
    frequency: Frequency
    period_days: int | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.frequency is Frequency.DAYS:
            if self.period_days is None or not 1 <= self.period_days <= 366:
                raise ValueError("a period of days needs period_days within 1..366")
        elif self.period_days is not None:
            raise ValueError("period_days is only for the days frequency")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            _("unknown time zone %(name)r: use an IANA name such as Europe/London", name=name)
        ) from None


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant (UTC) the local day begins. A midnight that a clock change skips maps the way
    Python's zoneinfo maps it (forward, by the gap)."""
    local = datetime.combine(day, time(0), tzinfo=zone(timezone))
    return local.astimezone(UTC)


def local_date(at: datetime, timezone: str) -> date:
    return at.astimezone(zone(timezone)).date()


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    first = first_of_month(day)
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


def _natural_start(schedule: Schedule, day: date) -> date:
    if schedule.frequency is Frequency.MONTH:
        return first_of_month(day)
    if schedule.frequency is Frequency.WEEK:
        return day - timedelta(days=day.weekday())
    assert schedule.period_days is not None
    blocks = (day - schedule.starts_on).days // schedule.period_days
    return schedule.starts_on + timedelta(days=blocks * schedule.period_days)


def _natural_end(schedule: Schedule, start: date) -> date:
    if schedule.frequency is Frequency.MONTH:
        return next_month(start)
    if schedule.frequency is Frequency.WEEK:
        return start + timedelta(days=7)
    assert schedule.period_days is not None
    return start + timedelta(days=schedule.period_days)


def period_containing(schedule: Schedule, day: date) -> tuple[date, date]:
    """The period `[starts_on, ends_on)` (local dates) that holds `day`, on or after the start."""
    if day < schedule.starts_on:
        raise ValueError(f"{day} is before the contract starts ({schedule.starts_on})")
    natural = _natural_start(schedule, day)
    return max(natural, schedule.starts_on), _natural_end(schedule, natural)


def periods_until(
    schedule: Schedule, after: date | None, until: datetime, limit: int = 10_000
) -> list[tuple[date, date]]:
    """The periods that follow the one ending at `after` (or the first), up to the one running at
    `until`: every period that has started by then."""
    out: list[tuple[date, date]] = []
    day = after or schedule.starts_on
    while local_midnight(day, schedule.timezone) <= until and len(out) < limit:
        start, end = period_containing(schedule, day)
        out.append((start, end))
        day = end
    return out


def month_allocation(amount: int, schedule: Schedule, month: date) -> list[tuple[date | None, int]]:
    """`amount` for the calendar month holding `month`, shared over its periods by days: each
    part rounded down, the remainder to the last one (the period holding the month's last day).
    `None` stands for the days before the contract started: allocated, never billed."""
    first, end = first_of_month(month), next_month(month)
    segments: list[tuple[date | None, int]] = []
    cursor = first
    if schedule.starts_on > first:
        cursor = min(schedule.starts_on, end)
        segments.append((None, (cursor - first).days))
    while cursor < end:
        start, period_end = period_containing(schedule, cursor)
        stop = min(period_end, end)
        segments.append((start, (stop - cursor).days))
        cursor = stop
    parts = allocate(amount, [days for _start, days in segments], remainder_to=len(segments) - 1)
    return [(key, part) for (key, _days), part in zip(segments, parts, strict=True)]


def period_share(amount: int, schedule: Schedule, starts_on: date, ends_on: date) -> int:
    """A period's share of a monthly amount: its parts of every month it touches."""
    share = 0
    month = first_of_month(starts_on)
    while month < ends_on:
        share += sum(
            part for key, part in month_allocation(amount, schedule, month) if key == starts_on
        )
        month = next_month(month)
    return share
