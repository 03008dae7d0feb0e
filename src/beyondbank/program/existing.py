"""What the database already holds that a program file may clash with or refer to, read through
the areas' service functions (branches and circles by code, terminals, card tokens, members,
held seats, relationship managers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from beyondbank.alliance import circles as circle_cases
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Branch, Circle
from beyondbank.alliance.service import held_seats
from beyondbank.core.authz import Role
from beyondbank.core.pagination import MAX_LIMIT, every_page
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import User

TerminalKey = tuple[str, str | None]


@dataclass(slots=True)
class Existing:
    branches: dict[str, Branch] = field(default_factory=dict)  # by code
    circles: dict[str, Circle] = field(default_factory=dict)  # by code
    terminals: dict[TerminalKey, str] = field(default_factory=dict)  # → holder's trading name
    card_tokens: set[str] = field(default_factory=set)  # linked to an active membership
    member_refs: set[str] = field(default_factory=set)  # bank refs with an active membership
    seats: dict[tuple[str, str], str] = field(default_factory=dict)  # (circle code, sub) → holder
    managers: dict[str, User] = field(default_factory=dict)  # active relationship managers by email


def read_existing(
    uow: UnitOfWork,
    *,
    acquirer_merchant_ids: Iterable[str],
    card_tokens: Iterable[str],
    bank_refs: Iterable[str],
) -> Existing:
    """Everything a file is checked against. Terminals, cards and members are looked up only for
    the ids the file names, so a small file against a large programme stays quick; branches,
    circles and seats are few and read whole."""
    existing = Existing()
    for branch in every_page(lambda c: circle_cases.list_branches(uow, cursor=c, limit=MAX_LIMIT)):
        existing.branches[branch.code] = branch
    for circle in every_page(
        lambda c: circle_cases.list_circles(
            uow, circle_cases.CircleFilter(), cursor=c, limit=MAX_LIMIT
        )
    ):
        existing.circles[circle.code] = circle
    by_id = {circle.id: circle.code for circle in existing.circles.values()}
    for seat in held_seats(uow):
        existing.seats[(by_id[seat.circle_id], seat.sub_industry)] = seat.merchant.trading_name
    existing.terminals = alliance.terminal_holders(uow, acquirer_merchant_ids)
    existing.card_tokens = alliance.linked_card_tokens(uow, card_tokens)
    customers = identity.customer_ids_by_bank_refs(uow, bank_refs)
    members = alliance.active_member_customer_ids(uow, customers.values())
    existing.member_refs = {ref for ref, customer_id in customers.items() if customer_id in members}
    for user in identity.users_with_role(uow, Role.RELATIONSHIP_MANAGER):
        existing.managers[user.email.lower()] = user
    return existing
