"""Bank core builders for tests: deposit accounts with balances and limits, payment requests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from beyondbank.alliance.models import Merchant
from beyondbank.core.authz import SYSTEM
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, LedgerTransaction, Posting
from beyondbank.payments import service
from beyondbank.payments.gateway import AuthoriseRequest, PayeeKind
from beyondbank.payments.models import DepositAccount
from tests import factories as f


def make_account(
    uow: UnitOfWork,
    customer: Customer | None = None,
    *,
    opening: int = 10_000,
    currency: str = "GBP",
    overdraft: int = 0,
    per_payment: int | None = None,
    daily: int | None = None,
) -> DepositAccount:
    return service.open_account(
        uow,
        SYSTEM,
        service.OpenAccount(
            customer_id=(customer or f.make_customer(uow)).public_id,
            currency=currency,
            overdraft_minor=overdraft,
            opening_balance_minor=opening,
            per_payment_limit_minor=per_payment,
            daily_limit_minor=daily,
        ),
    )


def request(
    account: DepositAccount | str,
    payee: Merchant | str,
    amount: int = 2_500,
    *,
    currency: str = "GBP",
    kind: PayeeKind = PayeeKind.MERCHANT,
    **over: Any,
) -> AuthoriseRequest:
    return AuthoriseRequest(
        account_id=account if isinstance(account, str) else account.public_id,
        amount_minor=amount,
        currency=currency,
        payee_kind=kind,
        payee_id=payee if isinstance(payee, str) else payee.public_id,
        **over,
    )


@dataclass(frozen=True)
class Figures:
    posted: int
    pending: int
    available: int


def deposit_figures(uow: UnitOfWork, account: DepositAccount) -> Figures:
    """The deposit's balance as the ledger has it now (read fresh)."""
    book = uow.session.get_one(Account, account.ledger_account_id, populate_existing=True)
    balance = ledger.balance(uow, book)
    return Figures(balance.posted.amount, balance.pending.amount, balance.available.amount)


def payable_figures(uow: UnitOfWork, payee_id: str, currency: str = "GBP") -> Figures:
    book = uow.session.scalars(
        select(Account).where(Account.code == f"merchant:{payee_id}:payable:{currency}")
    ).one_or_none()
    if book is None:
        return Figures(0, 0, 0)
    balance = ledger.balance(uow, book)
    return Figures(balance.posted.amount, balance.pending.amount, balance.available.amount)


def transaction(uow: UnitOfWork, public_id: str | None) -> LedgerTransaction:
    assert public_id is not None
    uow.session.expire_all()
    return ledger.get_transaction(uow, public_id)


def postings(uow: UnitOfWork, transaction: LedgerTransaction) -> list[tuple[Account, Posting]]:
    return ledger.postings_of(uow, transaction)


def customer_ref(uow: UnitOfWork, account: DepositAccount) -> str:
    return uow.session.get_one(Customer, account.customer_id).public_id


def ledger_count(uow: UnitOfWork) -> int:
    return len(uow.session.scalars(select(LedgerTransaction.id)).all())


_keys = itertools.count(1)


def fresh_key() -> str:
    return f"test-key-{next(_keys)}"
