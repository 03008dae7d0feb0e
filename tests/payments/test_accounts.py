"""Bank core administration: opening deposit accounts, money in and out, blocks, limits."""

from __future__ import annotations

import pytest
from schwifty import IBAN
from sqlalchemy import select

from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.errors import (
    Conflict,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    InvalidTransition,
)
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.models import (
    Account,
    AccountStatus,
    AccountType,
    LedgerTransaction,
    OwnerKind,
)
from beyondbank.payments import service
from beyondbank.payments.models import DepositStatus
from tests import factories as f
from tests.payments import factories as pf


def test_opening_gives_a_valid_sequential_iban_and_a_ledger_deposit(uow: UnitOfWork) -> None:
    customer = f.make_customer(uow)
    first = pf.make_account(uow, customer, opening=12_345, overdraft=2_000)
    second = pf.make_account(uow, opening=0)

    assert second.account_number == first.account_number + 1
    for account in (first, second):
        iban = IBAN(account.iban)  # raises unless the check digits and layout are right
        assert iban.country_code == "GB"
        assert iban.bank_code == service.BANK_CODE
        assert iban.branch_code == service.SORT_CODE
        assert int(iban.account_code) == account.account_number
    assert first.status is DepositStatus.ACTIVE

    book = uow.session.get_one(Account, first.ledger_account_id)
    assert book.code == f"member:{customer.public_id}:deposit:GBP"
    assert (book.type, book.owner_kind, book.floor_minor) == (
        AccountType.LIABILITY,
        OwnerKind.MEMBER,
        -2_000,
    )
    assert pf.deposit_figures(uow, first) == pf.Figures(12_345, 0, 12_345)
    assert pf.deposit_figures(uow, second) == pf.Figures(0, 0, 0)


def test_the_opening_balance_is_a_deposit_from_bank_cash(uow: UnitOfWork) -> None:
    account = pf.make_account(uow, opening=5_000)
    opening = pf.transaction(uow, _only_transaction(uow, account.public_id))
    assert opening.kind == "deposit"
    assert opening.member_ref == pf.customer_ref(uow, account)
    legs = {a.code: p.amount_minor for a, p in pf.postings(uow, opening)}
    assert legs == {"bank:-:cash:GBP": 5_000, f"member:{opening.member_ref}:deposit:GBP": -5_000}


def test_one_account_per_customer_and_currency(uow: UnitOfWork) -> None:
    customer = f.make_customer(uow)
    pf.make_account(uow, customer)
    with pytest.raises(Conflict) as twice:
        pf.make_account(uow, customer)
    assert twice.value.errors[0].field == "body.currency"
    euros = pf.make_account(uow, customer, currency="EUR", opening=100)
    assert euros.currency == "EUR"


def test_opening_refuses_what_makes_no_sense(uow: UnitOfWork) -> None:
    with pytest.raises(InvalidInput) as nobody:
        service.open_account(uow, SYSTEM, service.OpenAccount("cus_nobody", "GBP"))
    assert nobody.value.errors[0].field == "body.customer_id"
    customer = f.make_customer(uow)
    with pytest.raises(InvalidInput) as bad:
        service.open_account(
            uow,
            SYSTEM,
            service.OpenAccount(customer.public_id, "QQQ", overdraft_minor=-1, daily_limit_minor=0),
        )
    assert {e.field for e in bad.value.errors} == {
        "body.currency",
        "body.overdraft_minor",
        "body.daily_limit_minor",
    }


def test_deposits_are_idempotent_by_key(uow: UnitOfWork) -> None:
    account = pf.make_account(uow, opening=0)
    first = service.deposit(uow, SYSTEM, account, 2_000, "GBP", key="top-up-1")
    again = service.deposit(uow, SYSTEM, account, 2_000, "GBP", key="top-up-1")
    assert first.created
    assert not again.created
    assert again.transaction_id == first.transaction_id
    assert pf.deposit_figures(uow, account).posted == 2_000
    with pytest.raises(IdempotencyKeyReused):
        service.deposit(uow, SYSTEM, account, 2_001, "GBP", key="top-up-1")
    with pytest.raises(InvalidInput):
        service.deposit(uow, SYSTEM, account, 100, "EUR", key="top-up-2")


def test_withdrawals_stop_at_the_overdraft(uow: UnitOfWork) -> None:
    account = pf.make_account(uow, opening=1_000, overdraft=200)
    with pytest.raises(InsufficientBalance):
        service.withdraw(uow, SYSTEM, account, 1_201, "GBP", key="w1")
    done = service.withdraw(uow, SYSTEM, account, 1_200, "GBP", key="w2")
    assert pf.transaction(uow, done.transaction_id).kind == "withdrawal"
    assert pf.deposit_figures(uow, account).posted == -200


def test_a_blocked_account_takes_money_in_but_pays_nothing_out(uow: UnitOfWork) -> None:
    account = pf.make_account(uow, opening=1_000)
    service.block(uow, SYSTEM, account, "Suspected fraud")
    service.deposit(uow, SYSTEM, account, 500, "GBP", key="in")
    with pytest.raises(InvalidTransition) as out:
        service.withdraw(uow, SYSTEM, account, 100, "GBP", key="out")
    assert out.value.extra["current_status"] == "blocked"
    assert pf.deposit_figures(uow, account).posted == 1_500


def test_block_and_unblock_follow_the_table_and_are_audited(uow: UnitOfWork) -> None:
    admin = f.principal(f.make_user(uow, Role.BANK_ADMIN))
    account = pf.make_account(uow)
    service.block(uow, admin, account, "Card reported stolen")
    assert (account.status, account.status_reason) == (
        DepositStatus.BLOCKED,
        "Card reported stolen",
    )
    with pytest.raises(InvalidTransition) as twice:
        service.block(uow, admin, account, "Again")
    assert twice.value.extra["current_status"] == "blocked"
    assert "unblock" in twice.value.detail
    service.unblock(uow, admin, account, "Card found")
    assert account.status is DepositStatus.ACTIVE
    with pytest.raises(InvalidTransition):
        service.unblock(uow, admin, account)

    events = _events(uow, account.public_id)
    assert [(e.action, e.before, e.after, e.reason) for e in events[-2:]] == [
        (
            "deposit_account.blocked",
            {"status": "active"},
            {"status": "blocked"},
            "Card reported stolen",
        ),
        ("deposit_account.unblocked", {"status": "blocked"}, {"status": "active"}, "Card found"),
    ]
    assert {e.actor_id for e in events[-2:]} == {admin.public_id}


def test_limits_are_set_removed_and_audited(uow: UnitOfWork) -> None:
    account = pf.make_account(uow, daily=5_000)
    service.set_limits(uow, SYSTEM, account, {"per_payment_limit_minor": 1_000})
    service.set_limits(uow, SYSTEM, account, {"daily_limit_minor": None})
    assert (account.per_payment_limit_minor, account.daily_limit_minor) == (1_000, None)
    changes = [(e.before, e.after) for e in _events(uow, account.public_id)][-2:]
    assert changes == [
        ({"per_payment_limit_minor": None}, {"per_payment_limit_minor": 1_000}),
        ({"daily_limit_minor": 5_000}, {"daily_limit_minor": None}),
    ]
    with pytest.raises(InvalidInput) as bad:
        service.set_limits(uow, SYSTEM, account, {"daily_limit_minor": 0, "overdraft_minor": 5})
    assert {e.field for e in bad.value.errors} == {"body.daily_limit_minor", "body.overdraft_minor"}


def test_closing_needs_an_empty_account(uow: UnitOfWork) -> None:
    account = pf.make_account(uow, opening=100)
    with pytest.raises(Conflict):
        service.close(uow, SYSTEM, account, "Customer left")
    uow.session.refresh(account)
    assert account.status is DepositStatus.ACTIVE
    service.withdraw(uow, SYSTEM, account, 100, "GBP", key="empty")
    service.close(uow, SYSTEM, account, "Customer left")
    assert account.status is DepositStatus.CLOSED
    assert account.closed_at is not None
    book = uow.session.get_one(Account, account.ledger_account_id, populate_existing=True)
    assert book.status is AccountStatus.CLOSED
    with pytest.raises(InvalidTransition):
        service.deposit(uow, SYSTEM, account, 1, "GBP", key="late")
    with pytest.raises(InvalidTransition):
        service.set_limits(uow, SYSTEM, account, {"daily_limit_minor": 1})


def test_listing_filters_by_customer_and_status(uow: UnitOfWork) -> None:
    customer = f.make_customer(uow)
    mine = pf.make_account(uow, customer)
    other = pf.make_account(uow)
    service.block(uow, SYSTEM, other, "Dormant")
    rows, _ = service.list_accounts(uow, customer_id=customer.public_id)
    assert [a.public_id for a in rows] == [mine.public_id]
    rows, _ = service.list_accounts(uow, status=DepositStatus.BLOCKED)
    assert other.public_id in {a.public_id for a in rows}
    assert mine.public_id not in {a.public_id for a in rows}
    figures = service.figures(uow, [mine])[mine.id]
    assert (figures.customer_id, figures.balance_minor, figures.spendable_minor) == (
        customer.public_id,
        10_000,
        10_000,
    )


def _events(uow: UnitOfWork, object_id: str) -> list[AuditEvent]:
    return list(
        uow.session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == object_id).order_by(AuditEvent.id)
        )
    )


def _only_transaction(uow: UnitOfWork, reference: str) -> str:
    return uow.session.scalars(
        select(LedgerTransaction.public_id).where(LedgerTransaction.reference == reference)
    ).one()


def test_the_checkout_finds_the_customers_account_by_currency(uow: UnitOfWork) -> None:
    customer = f.make_customer(uow)
    pounds = pf.make_account(uow, customer)
    euros = pf.make_account(uow, customer, currency="EUR")
    assert service.account_for_customer(uow, customer.public_id, "GBP") is pounds
    assert service.account_for_customer(uow, customer.public_id, "EUR") is euros
    assert service.account_for_customer(uow, customer.public_id, "USD") is None
    assert service.account_for_customer(uow, "cus_nobody", "GBP") is None
