"""Ledger builders for tests: accounts of each kind and balanced drafts between them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from beyondbank.core.ids import new_ulid
from beyondbank.core.models import AuditEvent
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, AccountType, LedgerTransaction, OwnerKind, Posting


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


def pool(uow: UnitOfWork, ref: str = "pool-1", *, currency: str = "GBP", floor: int = 0) -> Account:
    """A co-funding pool: a liability that may not go below its floor."""
    return account(
        uow,
        "pool",
        type=AccountType.LIABILITY,
        owner_kind=OwnerKind.POOL,
        owner_ref=ref,
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


def draft(
    *legs: ledger.Leg, key: str | None = None, kind: str = "test", **over: Any
) -> ledger.Draft:
    """A draft of the given legs (balanced or not: the service decides)."""
    return ledger.Draft(key=key or f"test-{new_ulid()}", kind=kind, legs=legs, **over)


def debit(account: Account, amount: int, currency: str | None = None) -> ledger.Leg:
    return ledger.Leg.debit(account, Money(amount, currency or account.currency))


def credit(account: Account, amount: int, currency: str | None = None) -> ledger.Leg:
    return ledger.Leg.credit(account, Money(amount, currency or account.currency))


def row_counts(uow: UnitOfWork) -> dict[str, int]:
    """How many ledger rows (and audit events) there are, to show a refusal wrote nothing."""
    session = uow.session
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in (
            ("accounts", Account),
            ("transactions", LedgerTransaction),
            ("postings", Posting),
            ("audit", AuditEvent),
        )
    }


def totals(uow: UnitOfWork, *accounts: Account) -> list[tuple[int, int, int, int]]:
    """The running totals of accounts as the database has them now."""
    result = []
    for acc in accounts:
        uow.session.refresh(acc)
        result.append(
            (acc.debits_posted, acc.credits_posted, acc.debits_pending, acc.credits_pending)
        )
    return result
