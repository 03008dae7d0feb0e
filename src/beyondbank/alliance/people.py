"""The people the alliance refers to (staff users, customers), looked up through identity.

Everything the alliance needs from identity goes through this one seam. Where identity's
service offers the lookup (`get_user`, `users_with_role`) it is called. Four lookups it does
not offer yet read identity's tables here, in this one place, until identity exposes them:
users by internal id (to show who decided), bank references by customer id, and a customer by
bank reference, found or registered (the bank enrols customers who have not signed in yet).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from beyondbank.core.authz import Role
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import Customer, User


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
    if not ids:
        return {}
    users = uow.session.scalars(select(User).where(User.id.in_(ids)))
    return {user.id: _ref(user) for user in users}


def first_bank_admin(uow: UnitOfWork) -> StaffRef | None:
    """The longest-serving active bank admin: who a waitlist offer goes to when nobody manages
    the merchant."""
    admins = identity.users_with_role(uow, Role.BANK_ADMIN)
    return _ref(admins[0]) if admins else None


def bank_refs_by_ids(uow: UnitOfWork, customer_ids: set[int]) -> dict[int, str]:
    if not customer_ids:
        return {}
    rows = uow.session.execute(
        select(Customer.id, Customer.bank_ref).where(Customer.id.in_(customer_ids))
    )
    return {row.id: row.bank_ref for row in rows}


def customer_id_for_bank_ref(uow: UnitOfWork, bank_ref: str) -> int | None:
    return uow.session.scalars(
        select(Customer.id).where(Customer.bank_ref == bank_ref)
    ).one_or_none()


def customer_for_bank_ref(uow: UnitOfWork, bank_ref: str) -> int:
    """The customer's id, registering the customer (as sign-on would) if the bank names one who
    has not signed in yet."""
    existing = customer_id_for_bank_ref(uow, bank_ref)
    if existing is not None:
        return existing
    customer = Customer(
        public_id=new_public_id("cus"), bank_ref=bank_ref, created_at=uow.clock.now()
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(customer)
    except IntegrityError:  # registered meanwhile by a concurrent request or sign-on
        registered = customer_id_for_bank_ref(uow, bank_ref)
        if registered is None:
            raise
        return registered
    return customer.id
