"""Cursor pagination: opaque cursors over the internal, ever-increasing key, stable under inserts."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from beyondbank.core.errors import FieldError, InvalidInput

T = TypeVar("T")
Item = TypeVar("Item")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = value["after"]
        if not isinstance(after, int) or isinstance(after, bool):
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput(
            "The cursor is not one this API gave out.",
            errors=(FieldError("query.cursor", "not a valid cursor"),),
        ) from None


def paginate(
    session: Session,
    stmt: Select[T],
    key: InstrumentedAttribute[int],
    *,
    cursor: str | None,
    limit: int,
    descending: bool = False,
) -> tuple[Sequence[T], str | None]:
    """One page of `stmt` ordered by `key` (newest first if `descending`), and the cursor for the
    next page (None at the end)."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        after = decode_cursor(cursor)
        stmt = stmt.where(key < after if descending else key > after)
    order = key.desc() if descending else key
    rows = session.scalars(stmt.order_by(order).limit(limit + 1)).all()
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last: Any = page[-1]
    return page, encode_cursor(int(getattr(last, key.key)))


def every_page(fetch: Callable[[str | None], tuple[Sequence[T], str | None]]) -> Iterator[T]:
    """Every row of a paginated listing, page after page."""
    cursor: str | None = None
    while True:
        rows, cursor = fetch(cursor)
        yield from rows
        if cursor is None:
            return
