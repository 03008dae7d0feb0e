"""Ledger builders for tests: accounts of each kind and balanced drafts between them."""

from __future__ import annotations

from beyondbank.core.ids import new_ulid
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, AccountType, OwnerKind


def account(
    uow: UnitOfWork,
    purpose: str = "cash",
    *,
    type: AccountType = AccountType.ASSET,
    currency: str = "GBP",
    owner_kind: OwnerKind = OwnerKind.BANK,
    owner_ref: str | None = None,
    floor: int | None = None,
) -> Account:
    return ledger.open_account(
        uow,
        owner_kind=owner_kind,
        owner_ref=owner_ref,
        purpose=purpose,
        type=type,
        currency=currency,
        floor=floor,
    )


def transfer(
    debit: Account, credit: Account, amount: int, *, key: str | None = None, kind: str = "test"
) -> ledger.Draft:
    money = Money(amount, debit.currency)
    return ledger.Draft(
        key=key or f"test-{new_ulid()}",
        kind=kind,
        legs=(ledger.Leg.debit(debit, money), ledger.Leg.credit(credit, money)),
    )
