"""What the database already holds that a program file may clash with or refer to, read through
the areas' service functions (branches and circles by code, terminals, card tokens, members,
held seats, relationship managers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from beyondbank.alliance import circles as circle_cases
from beyondbank.alliance import membership, people
from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance.models import Branch, Circle, MemberStatus
from beyondbank.alliance.service import held_seats
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import User

T = TypeVar("T")
TerminalKey = tuple[str, str | None]
_CHUNK = 1000


@dataclass(slots=True)
class Existing:
    branches: dict[str, Branch] = field(default_factory=dict)  # by code
    circles: dict[str, Circle] = field(default_factory=dict)  # by code
    terminals: dict[TerminalKey, str] = field(default_factory=dict)  # → holder's trading name
    card_tokens: set[str] = field(default_factory=set)  # linked to an active membership
    member_refs: set[str] = field(default_factory=set)  # bank refs with an active membership
    seats: dict[tuple[str, str], str] = field(default_factory=dict)  # (circle code, sub) → holder
    managers: dict[str, User] = field(default_factory=dict)  # active relationship managers by email


def _every_page(fetch: Callable[[str | None], tuple[Sequence[T], str | None]]) -> Iterator[T]:
    cursor: str | None = None
    while True:
        rows, cursor = fetch(cursor)
        yield from rows
        if cursor is None:
            return


def read_existing(uow: UnitOfWork) -> Existing:
    """Everything a file is checked against. The alliance offers list functions rather than
    lookups by code or token, so this pages through them: quick on a new programme, and a
    full scan on a large one (see the report's note on bulk lookups)."""
    existing = Existing()
    for branch in _every_page(lambda c: circle_cases.list_branches(uow, cursor=c, limit=MAX_LIMIT)):
        existing.branches[branch.code] = branch
    for circle in _every_page(
        lambda c: circle_cases.list_circles(
            uow, circle_cases.CircleFilter(), cursor=c, limit=MAX_LIMIT
        )
    ):
        existing.circles[circle.code] = circle
    by_id = {circle.id: circle.code for circle in existing.circles.values()}
    for seat in held_seats(uow):
        existing.seats[(by_id[seat.circle_id], seat.sub_industry)] = seat.merchant.trading_name
    for merchant in _every_page(
        lambda c: merchant_cases.list_merchants(
            uow, SYSTEM, merchant_cases.MerchantFilter(), cursor=c, limit=MAX_LIMIT
        )
    ):
        for location in merchant.locations:
            for terminal in location.terminals:
                key = (terminal.acquirer_merchant_id, terminal.terminal_id)
                existing.terminals[key] = merchant.trading_name
    customer_ids: set[int] = set()
    for member in _every_page(
        lambda c: membership.list_members(
            uow,
            status=MemberStatus.ACTIVE,
            customer_id=None,
            member_number=None,
            cursor=c,
            limit=MAX_LIMIT,
        )
    ):
        customer_ids.add(member.customer_id)
        existing.card_tokens.update(c.card_token for c in member.cards if c.unlinked_at is None)
    ordered = sorted(customer_ids)
    for start in range(0, len(ordered), _CHUNK):  # bound the size of each `IN (...)`
        chunk = set(ordered[start : start + _CHUNK])
        existing.member_refs.update(people.bank_refs_by_ids(uow, chunk).values())
    for user in identity.users_with_role(uow, Role.RELATIONSHIP_MANAGER):
        existing.managers[user.email.lower()] = user
    return existing
