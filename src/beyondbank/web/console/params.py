"""Reading list filters from the query string: a blank choice means "any", a tampered one is named."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

from beyondbank.core.errors import invalid
from beyondbank.web.forms import Form
from beyondbank.web.i18n import _

E = TypeVar("E", bound=StrEnum)


def or_none(value: str | None) -> str | None:
    """A filter left blank ("any") is no filter."""
    value = (value or "").strip()
    return value or None


def choice(kind: type[E], value: str | None, field: str) -> E | None:
    """The enum member a filter names; None when blank; 422 naming the field when unknown."""
    value = or_none(value)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        options = ", ".join(member.value for member in kind)
        raise invalid(field, f"not one of: {options}") from None


def typed_day(form: Form, name: str) -> date | None:
    """A day typed as YYYY-MM-DD (what a date input sends); an error beside the field if not."""
    typed = or_none(form.value(name))
    if typed is None:
        return None
    try:
        return date.fromisoformat(typed)
    except ValueError:
        form.errors[name] = _("Give a day as YYYY-MM-DD, e.g. 2026-11-01.")
        return None


def day_range(
    form: Form, first_field: str, last_field: str, timezone: str
) -> tuple[datetime | None, datetime | None]:
    """The days typed as instants: from the first day's midnight to the midnight after the last,
    in `timezone`; errors beside the fields if a day is not one or the range runs backwards."""
    first, last = typed_day(form, first_field), typed_day(form, last_field)
    if first and last and last < first:
        form.errors[last_field] = _("The last day must come on or after the first.")
    zone = ZoneInfo(timezone)
    since = datetime(first.year, first.month, first.day, tzinfo=zone) if first else None
    until = (
        datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1) if last else None
    )
    return since, until
