"""Lookups pages share, built only on the areas' service functions and batched where a service
offers a batch, so that a list page costs a handful of queries rather than one per row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from itertools import islice
from typing import TypeVar
from zoneinfo import ZoneInfo

from beyondbank.alliance import circles as circle_cases
from beyondbank.alliance import people
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Branch, Circle, Merchant
from beyondbank.core.authz import Role
from beyondbank.core.pagination import MAX_LIMIT, every_page
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import User

T = TypeVar("T")
Fetch = Callable[[str | None], tuple[Sequence[T], str | None]]


def every(fetch: Fetch[T], *, cap: int) -> tuple[list[T], bool]:
    """All rows of a paginated service listing, up to `cap` rows; True if there were more."""
    rows = list(islice(every_page(fetch), cap + 1))
    return rows[:cap], len(rows) > cap


def staff(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, people.StaffRef]:
    """Staff by user id, in one query."""
    return people.users_by_ids(uow, {i for i in ids if i})


def users(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, User]:
    """Users with their email (for a merchant's view of its relationship manager), in one query."""
    return identity.users_by_ids(uow, {i for i in ids if i})


def merchants(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, Merchant]:
    """Merchants by id, in one query."""
    return alliance.merchants_by_ids(uow, ids)


def all_circles(uow: UnitOfWork) -> list[Circle]:
    """Every circle, oldest first: a bank has tens or hundreds, read a page of 200 at a time."""
    rows, _ = every(
        lambda cursor: circle_cases.list_circles(
            uow, circle_cases.CircleFilter(), cursor=cursor, limit=MAX_LIMIT
        ),
        cap=10_000,
    )
    return rows


def all_branches(uow: UnitOfWork) -> list[Branch]:
    rows, _ = every(
        lambda cursor: circle_cases.list_branches(uow, cursor=cursor, limit=MAX_LIMIT), cap=10_000
    )
    return rows


def relationship_managers(uow: UnitOfWork) -> list[User]:
    """Active relationship managers, longest-serving first."""
    return identity.users_with_role(uow, Role.RELATIONSHIP_MANAGER)


def bank_today(now: datetime, settings: Settings) -> date:
    """Today in the bank's own time zone: follow-ups fall due by the bank's calendar."""
    return now.astimezone(ZoneInfo(settings.default_timezone)).date()
