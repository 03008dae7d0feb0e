"""Every decline code: answered as a result (not an exception), kept, and nothing held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments import service
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import DeclineCode, Outcome, PaymentResult, PaymentStatus
from beyondbank.payments.models import DailyUsage, Payment, PaymentOperation
from tests.payments import factories as pf
from tests.payments.conftest import Shop


def _assert_declined(
    uow: UnitOfWork, result: PaymentResult, code: DeclineCode, amount: int
) -> None:
    assert not result.approved
    assert result.decline_code is code
    payment = result.payment
    assert payment.status is PaymentStatus.DECLINED
    assert payment.decline_code is code
    assert payment.decline_message
    assert payment.amount_minor == amount
    assert payment.hold_transaction_id is None
    assert payment.expires_at is None
    # Kept for the bank: the payment and its operation, with the code.
    row = uow.session.scalars(select(Payment).where(Payment.public_id == payment.id)).one()
    assert (row.status, row.decline_code) == (PaymentStatus.DECLINED, code)
    operation = uow.session.scalars(
        select(PaymentOperation).where(PaymentOperation.payment_id == row.id)
    ).one()
    assert (operation.outcome, operation.decline_code) == (Outcome.DECLINED, code)
    assert operation.ledger_transaction_id is None


def test_insufficient_funds(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    result = bank.authorise(pf.request(shop.account, shop.merchant, 10_001), key="big")
    _assert_declined(uow, result, DeclineCode.INSUFFICIENT_FUNDS, 10_001)
    message = result.payment.decline_message or ""
    assert not any(ch.isdigit() for ch in message)  # the payee is never told the balance
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 0, 10_000)
    assert bank.authorise(pf.request(shop.account, shop.merchant, 10_000), key="all").approved


def test_insufficient_funds_counts_the_holds_already_there(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    assert bank.authorise(pf.request(shop.account, shop.merchant, 6_000), key="a").approved
    result = bank.authorise(pf.request(shop.account, shop.merchant, 4_001), key="b")
    _assert_declined(uow, result, DeclineCode.INSUFFICIENT_FUNDS, 4_001)
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 6_000, 4_000)


def test_an_overdraft_lets_the_balance_go_below_zero_as_far_as_agreed(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    account = pf.make_account(uow, opening=1_000, overdraft=500)
    declined = bank.authorise(pf.request(account, shop.merchant, 1_501), key="over")
    _assert_declined(uow, declined, DeclineCode.INSUFFICIENT_FUNDS, 1_501)
    approved = bank.authorise(pf.request(account, shop.merchant, 1_500), key="edge")
    bank.capture(approved.payment.id, key="edge-c")
    assert pf.deposit_figures(uow, account) == pf.Figures(-500, 0, -500)


def test_account_blocked(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    service.block(uow, SYSTEM, shop.account, "Suspected fraud")
    result = bank.authorise(pf.request(shop.account, shop.merchant, 100), key="b")
    _assert_declined(uow, result, DeclineCode.ACCOUNT_BLOCKED, 100)
    service.unblock(uow, SYSTEM, shop.account)
    assert bank.authorise(pf.request(shop.account, shop.merchant, 100), key="b2").approved


def test_a_block_does_not_stop_capturing_what_was_authorised_before(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    pid = bank.authorise(pf.request(shop.account, shop.merchant, 100), key="a").payment.id
    service.block(uow, SYSTEM, shop.account, "Suspected fraud")
    assert bank.capture(pid, key="c").payment.status is PaymentStatus.CAPTURED
    assert bank.refund(pid, key="r").payment.status is PaymentStatus.REFUNDED  # money in


def test_account_closed(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    account = pf.make_account(uow, opening=0)
    service.close(uow, SYSTEM, account, "Customer left")
    result = bank.authorise(pf.request(account, shop.merchant, 100), key="c")
    _assert_declined(uow, result, DeclineCode.ACCOUNT_CLOSED, 100)


def test_per_payment_limit(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    account = pf.make_account(uow, per_payment=3_000)
    result = bank.authorise(pf.request(account, shop.merchant, 3_001), key="over")
    _assert_declined(uow, result, DeclineCode.PER_PAYMENT_LIMIT, 3_001)
    assert bank.authorise(pf.request(account, shop.merchant, 3_000), key="at").approved


def test_currency_mismatch(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    result = bank.authorise(pf.request(shop.account, shop.merchant, 100, currency="EUR"), key="e")
    _assert_declined(uow, result, DeclineCode.CURRENCY_MISMATCH, 100)
    assert result.payment.currency == "EUR"


def test_daily_limit_counts_the_days_payments(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    account = pf.make_account(uow, daily=5_000)
    assert bank.authorise(pf.request(account, shop.merchant, 3_000), key="1").approved
    second = bank.authorise(pf.request(account, shop.merchant, 2_000), key="2")
    assert second.approved
    result = bank.authorise(pf.request(account, shop.merchant, 1), key="3")
    _assert_declined(uow, result, DeclineCode.DAILY_LIMIT, 1)
    too_big = bank.authorise(pf.request(account, shop.merchant, 5_001), key="4")
    _assert_declined(uow, too_big, DeclineCode.DAILY_LIMIT, 5_001)
    assert _used(uow, account.id) == 5_000

    # A void gives its amount back to the day; a partial capture gives back the rest.
    bank.void(second.payment.id, key="2v")
    assert _used(uow, account.id) == 3_000
    third = bank.authorise(pf.request(account, shop.merchant, 2_000), key="5")
    bank.capture(third.payment.id, key="5c", amount_minor=500)
    assert _used(uow, account.id) == 3_500
    assert bank.authorise(pf.request(account, shop.merchant, 1_500), key="6").approved

    clock.advance(timedelta(days=1))
    assert bank.authorise(pf.request(account, shop.merchant, 1_000), key="7").approved


def test_daily_limit_days_are_the_banks_days_not_utc(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    """In summer London is UTC+1: 23:30 UTC on 1 July is already 2 July at the bank."""
    account = pf.make_account(uow, opening=50_000, daily=5_000)
    clock.set(datetime(2026, 7, 1, 22, 30, tzinfo=UTC))  # 23:30 on 1 July in London
    assert bank.authorise(pf.request(account, shop.merchant, 5_000), key="1").approved
    clock.set(datetime(2026, 7, 1, 22, 59, tzinfo=UTC))
    late = bank.authorise(pf.request(account, shop.merchant, 1), key="2")
    _assert_declined(uow, late, DeclineCode.DAILY_LIMIT, 1)
    clock.set(datetime(2026, 7, 1, 23, 30, tzinfo=UTC))  # 00:30 on 2 July in London
    assert bank.authorise(pf.request(account, shop.merchant, 5_000), key="3").approved


def test_lowering_a_limit_applies_to_the_next_payment(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    account = pf.make_account(uow)
    assert bank.authorise(pf.request(account, shop.merchant, 3_000), key="1").approved
    service.set_limits(uow, SYSTEM, account, {"daily_limit_minor": 4_000})
    declined = bank.authorise(pf.request(account, shop.merchant, 1_001), key="2")
    _assert_declined(uow, declined, DeclineCode.DAILY_LIMIT, 1_001)
    assert bank.authorise(pf.request(account, shop.merchant, 1_000), key="3").approved


def test_declines_are_checked_in_the_banks_order(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    """Blocked beats currency, currency beats limits, limits beat funds."""
    account = pf.make_account(uow, opening=100, per_payment=50)
    over_everything = pf.request(account, shop.merchant, 1_000, currency="EUR")
    assert bank.authorise(over_everything, key="1").decline_code is DeclineCode.CURRENCY_MISMATCH
    over_limit = pf.request(account, shop.merchant, 1_000)
    assert bank.authorise(over_limit, key="2").decline_code is DeclineCode.PER_PAYMENT_LIMIT
    service.block(uow, SYSTEM, account, "Lost card")
    assert bank.authorise(over_everything, key="3").decline_code is DeclineCode.ACCOUNT_BLOCKED


def _used(uow: UnitOfWork, account_id: int) -> int:
    uow.session.expire_all()
    return sum(
        uow.session.scalars(
            select(DailyUsage.used_minor).where(DailyUsage.deposit_account_id == account_id)
        ).all()
    )
