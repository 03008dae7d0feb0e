"""The people the alliance refers to (staff users, customers), looked up through identity's service."""

from __future__ import annotations

from dataclasses import dataclass

from beyondbank.core.authz import Role
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import User


@dataclass(frozen=True, slots=True)
class StaffRef:
    id: int
    public_id: str
    name: str
    role: Role
    active: bool


def _ref(user: User) -> StaffRef:
    return StaffRef(user.id, user.public_id, user.name, user.role, user.active)


def user_by_public_id(uow: UnitOfWork, public_id: str) -> StaffRef:
    """A user named in a request; NotFound if there is none."""
    return _ref(identity.get_user(uow, public_id))


def users_by_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, StaffRef]:
    return {i: _ref(user) for i, user in identity.users_by_ids(uow, ids).items()}


def first_bank_admin(uow: UnitOfWork) -> StaffRef | None:
    """The longest-serving active bank admin: who a waitlist offer goes to when nobody manages
    the merchant."""
    admins = identity.users_with_role(uow, Role.BANK_ADMIN)
    return _ref(admins[0]) if admins else None


def bank_refs_by_ids(uow: UnitOfWork, customer_ids: set[int]) -> dict[int, str]:
    return identity.bank_refs_by_ids(uow, customer_ids)


def customer_id_for_bank_ref(uow: UnitOfWork, bank_ref: str) -> int | None:
    customer = identity.customer_by_bank_ref(uow, bank_ref)
    return customer.id if customer else None


def customer_for_bank_ref(uow: UnitOfWork, bank_ref: str) -> int:
    """The customer's id, registering the customer (as sign-on would) if the bank names one who
    has not signed in yet."""
    return identity.register_customer(uow, bank_ref).id
