"""The bank core gateway: holds, captures, voids and refunds, mirrored in the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from beyondbank.commerce.models import Partner, PartnerStatus
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from beyondbank.core.ids import new_public_id
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.models import TransactionStatus
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import (
    OperationKind,
    Outcome,
    PayeeKind,
    PaymentGateway,
    PaymentStatus,
)
from beyondbank.payments.models import Payment, PaymentOperation
from tests import factories as f
from tests.payments import factories as pf
from tests.payments.conftest import Shop


def test_the_adapter_is_a_payment_gateway(bank: BankCoreGateway) -> None:
    assert isinstance(bank, PaymentGateway)


def test_authorise_holds_the_amount_on_the_deposit_for_the_payee(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    result = bank.authorise(
        pf.request(shop.account, shop.merchant, 2_500, reference="ord_1", category="books"),
        key="auth-1",
    )

    assert result.approved
    assert not result.replayed
    payment = result.payment
    assert payment.status is PaymentStatus.AUTHORISED
    assert (payment.amount_minor, payment.captured_minor, payment.refunded_minor) == (2_500, 0, 0)
    assert payment.expires_at == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert result.operation.kind is OperationKind.AUTHORISE
    assert result.operation.ledger_transaction_id == payment.hold_transaction_id
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 2_500, 7_500)
    assert pf.payable_figures(uow, shop.merchant.public_id) == pf.Figures(0, 0, 0)

    hold = pf.transaction(uow, payment.hold_transaction_id)
    customer_ref = pf.customer_ref(uow, shop.account)
    assert (hold.kind, hold.status) == ("sale", TransactionStatus.PENDING)
    assert hold.counterparty_ref == shop.merchant.public_id
    assert hold.member_ref == customer_ref
    assert hold.reference == payment.id
    assert hold.category == "books"


def test_capture_in_full_posts_the_sale_to_the_payee(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="a")
    captured = bank.capture(authorised.payment.id, key="c")

    assert captured.payment.status is PaymentStatus.CAPTURED
    assert captured.payment.captured_minor == 2_500
    assert captured.operation.amount_minor == 2_500
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(7_500, 0, 7_500)
    assert pf.payable_figures(uow, shop.merchant.public_id).posted == 2_500
    sale = pf.transaction(uow, captured.payment.capture_transaction_id)
    hold = pf.transaction(uow, captured.payment.hold_transaction_id)
    assert (sale.kind, sale.status, sale.resolves_id) == ("sale", TransactionStatus.POSTED, hold.id)
    assert sale.counterparty_ref == shop.merchant.public_id
    assert sale.reference == captured.payment.id
    assert hold.status is TransactionStatus.CAPTURED


def test_a_partial_capture_takes_part_and_releases_the_rest(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="a")
    captured = bank.capture(authorised.payment.id, key="c", amount_minor=1_000)

    assert captured.payment.status is PaymentStatus.CAPTURED
    assert (captured.payment.amount_minor, captured.payment.captured_minor) == (2_500, 1_000)
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(9_000, 0, 9_000)
    assert pf.payable_figures(uow, shop.merchant.public_id).posted == 1_000
    with pytest.raises(InvalidTransition) as again:
        bank.capture(authorised.payment.id, key="c2", amount_minor=500)
    assert again.value.extra["current_status"] == "captured"


def test_a_capture_beyond_the_authorised_amount_is_invalid(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="a")
    for amount in (2_501, 0, -5):
        with pytest.raises(InvalidInput) as refused:
            bank.capture(authorised.payment.id, key=f"c{amount}", amount_minor=amount)
        assert refused.value.errors[0].field == "body.amount_minor"
    assert bank.payment(authorised.payment.id).status is PaymentStatus.AUTHORISED


def test_void_releases_the_hold(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="a")
    voided = bank.void(authorised.payment.id, key="v")

    assert voided.payment.status is PaymentStatus.VOIDED
    assert voided.payment.resolved_at is not None
    assert voided.operation.ledger_transaction_id == authorised.payment.hold_transaction_id
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 0, 10_000)
    hold = pf.transaction(uow, authorised.payment.hold_transaction_id)
    assert hold.status is TransactionStatus.VOIDED
    assert pf.payable_figures(uow, shop.merchant.public_id) == pf.Figures(0, 0, 0)


def test_void_after_capture_is_refused_naming_the_state(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant), key="a")
    bank.capture(authorised.payment.id, key="c")
    before = pf.ledger_count(uow)
    with pytest.raises(InvalidTransition) as refused:
        bank.void(authorised.payment.id, key="v")
    assert refused.value.status == 409
    assert refused.value.extra["current_status"] == "captured"
    assert "is captured" in refused.value.detail
    assert "refund" in refused.value.detail  # what the state allows instead
    assert pf.ledger_count(uow) == before
    assert _operations(uow, authorised.payment.id) == ["authorise", "capture"]


def test_refunds_in_parts_up_to_the_captured_amount_and_no_further(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="a")
    bank.capture(authorised.payment.id, key="c", amount_minor=2_000)
    pid = authorised.payment.id
    merchant = shop.merchant.public_id

    first = bank.refund(pid, key="r1", amount_minor=500)
    assert first.payment.status is PaymentStatus.PARTIALLY_REFUNDED
    assert first.payment.refunded_minor == 500
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(8_500, 0, 8_500)
    assert pf.payable_figures(uow, merchant).posted == 1_500

    with pytest.raises(Conflict) as beyond:
        bank.refund(pid, key="r2", amount_minor=1_501)
    assert beyond.value.status == 409
    assert beyond.value.extra["refundable_minor"] == 1_500
    assert beyond.value.extra["current_status"] == "partially_refunded"

    second = bank.refund(pid, key="r3", amount_minor=1_000)
    last = bank.refund(pid, key="r4")  # what is left: 500
    assert second.payment.status is PaymentStatus.PARTIALLY_REFUNDED
    assert last.operation.amount_minor == 500
    assert last.payment.status is PaymentStatus.REFUNDED
    assert last.payment.refunded_minor == last.payment.captured_minor == 2_000
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 0, 10_000)
    assert pf.payable_figures(uow, merchant).posted == 0

    with pytest.raises(InvalidTransition) as over:
        bank.refund(pid, key="r5", amount_minor=1)
    assert over.value.extra["current_status"] == "refunded"

    sale = pf.transaction(uow, last.payment.capture_transaction_id)
    for result in (first, second, last):
        ret = pf.transaction(uow, result.operation.ledger_transaction_id)
        assert (ret.kind, ret.corrects_id) == ("return", sale.id)
        assert ret.counterparty_ref == merchant
        assert ret.reference == pid
        assert ret.member_ref == pf.customer_ref(uow, shop.account)


def test_refund_of_an_authorisation_not_captured_is_refused(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    authorised = bank.authorise(pf.request(shop.account, shop.merchant), key="a")
    with pytest.raises(InvalidTransition) as refused:
        bank.refund(authorised.payment.id, key="r")
    assert refused.value.extra["current_status"] == "authorised"


def test_a_payment_to_a_partner_credits_the_partners_payable(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    partner = Partner(
        public_id=new_public_id("prt"),
        name="Books Online",
        legal_name="Books Online Ltd",
        status=PartnerStatus.ACTIVE,
        country="GB",
        currency="GBP",
        timezone="Europe/London",
        created_at=uow.clock.now(),
    )
    uow.session.add(partner)
    uow.session.flush()
    result = bank.authorise(
        pf.request(shop.account, partner.public_id, 1_200, kind=PayeeKind.PARTNER), key="p"
    )
    bank.capture(result.payment.id, key="pc")
    sale = pf.transaction(uow, bank.payment(result.payment.id).capture_transaction_id)
    assert sale.counterparty_ref == partner.public_id
    codes = {account.code for account, _ in pf.postings(uow, sale)}
    assert f"partner:{partner.public_id}:payable:GBP" in codes


def test_requests_naming_nobody_are_invalid(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    with pytest.raises(InvalidInput) as no_account:
        bank.authorise(pf.request("dep_nobody", shop.merchant), key="x1")
    assert no_account.value.errors[0].field == "body.account_id"
    with pytest.raises(InvalidInput) as no_payee:
        bank.authorise(pf.request(shop.account, "mer_nobody"), key="x2")
    assert no_payee.value.errors[0].field == "body.payee_id"
    with pytest.raises(InvalidInput) as no_partner:
        bank.authorise(pf.request(shop.account, "prt_nobody", kind=PayeeKind.PARTNER), key="x3")
    assert no_partner.value.errors[0].field == "body.payee_id"
    with pytest.raises(InvalidInput) as bad_amount:
        bank.authorise(pf.request(shop.account, shop.merchant, 0), key="x4")
    assert bad_amount.value.errors[0].field == "body.amount_minor"
    with pytest.raises(NotFound):
        bank.capture("pay_nothing", key="x5")
    assert uow.session.scalar(select(func.count()).select_from(Payment)) == 0


# -- idempotency ---------------------------------------------------------------------------------


def test_the_same_key_and_request_answers_the_original_and_writes_nothing(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    request = pf.request(shop.account, shop.merchant, 2_500)
    first = bank.authorise(request, key="same")
    rows = (pf.ledger_count(uow), _count(uow, Payment), _count(uow, PaymentOperation))

    again = bank.authorise(request, key="same")
    assert again.replayed
    assert again.payment == first.payment
    assert again.operation == first.operation
    assert (pf.ledger_count(uow), _count(uow, Payment), _count(uow, PaymentOperation)) == rows
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 2_500, 7_500)


def test_a_replay_answers_the_payment_as_the_first_call_left_it(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    pid = bank.authorise(pf.request(shop.account, shop.merchant), key="a").payment.id
    captured = bank.capture(pid, key="c", amount_minor=2_000)
    bank.refund(pid, key="r", amount_minor=700)
    rows = pf.ledger_count(uow)

    replayed = bank.capture(pid, key="c", amount_minor=2_000)
    assert replayed.replayed
    assert replayed.payment == captured.payment
    assert replayed.payment.status is PaymentStatus.CAPTURED  # not what it is now
    assert bank.refund(pid, key="r", amount_minor=700).operation.amount_minor == 700
    assert pf.ledger_count(uow) == rows
    assert bank.payment(pid).refunded_minor == 700


def test_the_same_key_with_another_request_is_refused(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    pid = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="k").payment.id
    rows = pf.ledger_count(uow)
    for attempt in (
        lambda: bank.authorise(pf.request(shop.account, shop.merchant, 2_600), key="k"),
        lambda: bank.capture(pid, key="k"),
        lambda: bank.void(pid, key="k"),
    ):
        with pytest.raises(IdempotencyKeyReused) as refused:
            attempt()
        assert refused.value.status == 422
        assert refused.value.slug == "idempotency-key-reused"
    bank.capture(pid, key="k2", amount_minor=1_000)
    with pytest.raises(IdempotencyKeyReused) as other_amount:
        bank.capture(pid, key="k2", amount_minor=1_001)
    assert other_amount.value.slug == "idempotency-key-reused"
    bank.refund(pid, key="k3", amount_minor=100)
    with pytest.raises(IdempotencyKeyReused) as other_refund:
        bank.refund(pid, key="k3", amount_minor=200)
    assert other_refund.value.slug == "idempotency-key-reused"
    assert pf.ledger_count(uow) == rows + 2  # the capture and the one refund


def test_a_retried_decline_answers_the_same_decline(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    request = pf.request(shop.account, shop.merchant, 10_001)
    first = bank.authorise(request, key="d")
    again = bank.authorise(request, key="d")
    assert not first.approved
    assert not again.approved
    assert again.replayed
    assert again.payment.id == first.payment.id
    assert _count(uow, Payment) == 1


# -- expiry --------------------------------------------------------------------------------------


def test_an_authorisation_not_captured_in_time_expires_on_capture(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    pid = bank.authorise(pf.request(shop.account, shop.merchant, 2_500), key="a").payment.id
    clock.advance(timedelta(days=7))
    with pytest.raises(InvalidTransition) as late:
        bank.capture(pid, key="c")
    assert late.value.extra["current_status"] == "expired"
    payment = bank.payment(pid)
    assert payment.status is PaymentStatus.EXPIRED
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(10_000, 0, 10_000)
    assert pf.transaction(uow, payment.hold_transaction_id).status is TransactionStatus.VOIDED
    assert _operations(uow, pid) == ["authorise", "expire"]


def test_expire_due_releases_only_the_authorisations_past_their_time(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    old = bank.authorise(pf.request(shop.account, shop.merchant, 1_000), key="old").payment.id
    clock.advance(timedelta(days=3))
    new = bank.authorise(pf.request(shop.account, shop.merchant, 2_000), key="new").payment.id
    captured = bank.authorise(pf.request(shop.account, shop.merchant, 500), key="cap").payment.id
    bank.capture(captured, key="cap-c")
    clock.advance(timedelta(days=4, seconds=1))

    assert bank.expire_due() == [old]
    assert bank.expire_due() == []
    assert bank.payment(old).status is PaymentStatus.EXPIRED
    assert bank.payment(new).status is PaymentStatus.AUTHORISED
    assert pf.deposit_figures(uow, shop.account) == pf.Figures(9_500, 2_000, 7_500)
    with pytest.raises(InvalidTransition):
        bank.void(old, key="late-void")


def test_a_void_past_the_expiry_time_still_releases(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    pid = bank.authorise(pf.request(shop.account, shop.merchant), key="a").payment.id
    clock.advance(timedelta(days=8))
    assert bank.void(pid, key="v").payment.status is PaymentStatus.VOIDED
    assert bank.expire_due() == []


# -- audit ---------------------------------------------------------------------------------------


def test_every_call_is_in_the_audit_trail_with_who_asked(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    admin = f.principal(f.make_user(uow, Role.BANK_ADMIN))
    pid = bank.authorise(pf.request(shop.account, shop.merchant), key="a", actor=admin).payment.id
    bank.capture(pid, key="c", amount_minor=1_000, actor=admin)
    bank.refund(pid, key="r", actor=admin)
    bank.authorise(pf.request(shop.account, shop.merchant, 99_999), key="d", actor=admin)
    events = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "payment").order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == [
        "payment.authorised",
        "payment.captured",
        "payment.refunded",
        "payment.declined",
    ]
    assert {e.actor_id for e in events} == {admin.public_id}
    assert events[1].before == {"status": "authorised", "captured_minor": 0, "refunded_minor": 0}
    assert events[3].after is not None
    assert events[3].after["decline_code"] == "insufficient_funds"
    operations = uow.session.scalars(select(PaymentOperation)).all()
    assert {o.requested_by for o in operations} == {admin.public_id}
    assert sorted(o.outcome for o in operations).count(Outcome.DECLINED) == 1


def _count(uow: UnitOfWork, model: type) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _operations(uow: UnitOfWork, payment_id: str) -> list[str]:
    return [
        kind.value
        for kind in uow.session.scalars(
            select(PaymentOperation.kind)
            .join(Payment, Payment.id == PaymentOperation.payment_id)
            .where(Payment.public_id == payment_id)
            .order_by(PaymentOperation.id)
        )
    ]
