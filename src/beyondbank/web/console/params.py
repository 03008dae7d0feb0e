"""Reading list filters from the query string: a blank choice means "any", a tampered one is named."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from beyondbank.core.errors import invalid

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
