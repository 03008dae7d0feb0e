"""Checkout: two short transactions around the bank's authorisation, compensation when anything
fails after it, Idempotency-Key replays, expired reservations, consent."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from beyondbank.commerce.models import Order, OrderStatus, Product, WebhookEvent
from beyondbank.commerce.orders import service
from beyondbank.commerce.orders.checkout import SoldOut, lines_of
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import IdempotencyKeyReused, InvalidInput, InvalidTransition
from beyondbank.core.models import IdempotencyRecord
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import (
    AuthoriseRequest,
    PaymentDeclined,
    PaymentResult,
    PaymentStatus,
)
from tests import factories as f
from tests.commerce.orders.conftest import Shop, checkout_in
from tests.payments import factories as pf


def _stock(uow: UnitOfWork, product: Product) -> tuple[int, int]:
    uow.session.refresh(product)
    return product.stock_on_hand, product.stock_reserved


def _events(uow: UnitOfWork, order: Order) -> list[str]:
    rows = uow.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    return [e.event_type for e in rows if e.payload["data"]["order_id"] == order.public_id]


def _payments(bank: BankCoreGateway, uow: UnitOfWork, order: Order) -> list[Any]:
    from beyondbank.payments import service as payments

    rows, _ = payments.list_payments(
        uow, f.principal(f.make_customer(uow)), payments.PaymentFilters(reference=order.public_id)
    )
    return [bank.payment(p.public_id) for p in rows]


def test_a_checkout_reserves_stock_and_is_paid_by_an_authorisation(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    done = service.checkout_order(uow, bank, shop.buyer, checkout_in(shop, (shop.product, 2)))
    order = done.order
    assert order.status is OrderStatus.PAID
    assert (order.goods_minor, order.saving_minor, order.total_minor) == (2_000, 500, 2_000)
    assert order.reserved_until is None
    assert _stock(uow, shop.product) == (10, 2)
    payment = bank.payment(order.payment_ref or "")
    assert (payment.status, payment.amount_minor) == (PaymentStatus.AUTHORISED, 2_000)
    assert (payment.payee_id, payment.reference) == (shop.partner.public_id, order.public_id)
    assert pf.deposit_figures(uow, shop.account).pending == 2_000
    assert _events(uow, order) == ["order.created", "order.paid"]


def test_the_cart_is_checked_out_and_a_new_one_starts(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    service.add_item(
        uow, shop.buyer, product_id=shop.product.public_id, quantity=1, campaign_id=None
    )
    service.add_item(
        uow, shop.buyer, product_id=shop.product.public_id, quantity=2, campaign_id=None
    )
    order = service.checkout_order(
        uow,
        bank,
        shop.buyer,
        service.CheckoutIn(
            partner_id=shop.partner.public_id,
            shipping_address={"recipient": "A", "line1": "1 Road", "city": "London"},
            share_address_with_partner=True,
        ),
    ).order
    assert order.goods_minor == 3_000
    assert service.carts(uow, shop.buyer) == []


def test_a_decline_cancels_the_order_and_gives_the_stock_back(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    poor = f.make_customer(uow)
    pf.make_account(uow, poor, opening=500)
    uow.commit()
    with pytest.raises(PaymentDeclined) as declined:
        service.checkout_order(uow, bank, f.principal(poor), checkout_in(shop, (shop.product, 2)))
    assert declined.value.extra["decline_code"] == "insufficient_funds"
    order = uow.session.scalars(select(Order).where(Order.customer_id == poor.id)).one()
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED
    assert _stock(uow, shop.product) == (10, 0)
    assert _events(uow, order) == ["order.created", "order.cancelled"]


def test_a_declined_cart_checkout_gives_the_cart_back(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    poor = f.make_customer(uow)
    pf.make_account(uow, poor, opening=500)
    uow.commit()
    buyer = f.principal(poor)
    service.add_item(uow, buyer, product_id=shop.product.public_id, quantity=2, campaign_id=None)
    with pytest.raises(PaymentDeclined):
        service.checkout_order(uow, bank, buyer, replace(checkout_in(shop), items=[]))
    (cart,) = service.carts(uow, buyer)
    assert [(line.sku, line.quantity) for line in cart.lines] == [(shop.product.sku, 2)]


def test_sold_out_writes_no_order(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> None:
    with pytest.raises(SoldOut) as sold_out:
        service.checkout_order(uow, bank, shop.buyer, checkout_in(shop, (shop.other, 6)))
    assert sold_out.value.status == 409
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 0
    assert _stock(uow, shop.other) == (5, 0)


class AuthorisesThenFails:
    """A bank that authorises, and whose answer is then lost (a timeout after the hold)."""

    def __init__(self, bank: BankCoreGateway, error: BaseException) -> None:
        self.bank = bank
        self.error = error

    def authorise(self, request: AuthoriseRequest, **kw: Any) -> PaymentResult:
        self.bank.authorise(request, **kw)
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bank, name)


def test_a_failure_after_the_authorisation_voids_it_and_releases_the_stock(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    flaky = AuthorisesThenFails(bank, ConnectionError("reset after authorising"))
    with pytest.raises(ConnectionError):
        service.checkout_order(uow, flaky, shop.buyer, checkout_in(shop, (shop.product, 3)))  # type: ignore[arg-type]
    order = uow.session.scalars(select(Order)).one()
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED
    assert _stock(uow, shop.product) == (10, 0)
    assert [p.status for p in _payments(bank, uow, order)] == [PaymentStatus.VOIDED]
    assert pf.deposit_figures(uow, shop.account).pending == 0


def test_a_failure_marking_the_order_paid_is_compensated(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Order:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(service, "confirm_paid", broken)
    with pytest.raises(RuntimeError):
        service.checkout_order(uow, bank, shop.buyer, checkout_in(shop, (shop.product, 1)))
    order = uow.session.scalars(select(Order)).one()
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED
    assert [p.status for p in _payments(bank, uow, order)] == [PaymentStatus.VOIDED]
    assert _stock(uow, shop.product) == (10, 0)


def test_a_crash_after_authorising_is_cleaned_up_by_expire_reservations(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    crashing = AuthorisesThenFails(bank, KeyboardInterrupt())  # the process dies: no compensation
    with pytest.raises(KeyboardInterrupt):
        service.checkout_order(uow, crashing, shop.buyer, checkout_in(shop, (shop.product, 4)))  # type: ignore[arg-type]
    order = uow.session.scalars(select(Order)).one()
    assert order.status is OrderStatus.PENDING_PAYMENT
    assert _stock(uow, shop.product) == (10, 4)
    assert service.expire_reservations(uow, bank) == []  # not due yet
    clock.advance(service.RESERVATION + timedelta(seconds=1))
    assert service.expire_reservations(uow, bank) == [order.public_id]
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED
    assert [p.status for p in _payments(bank, uow, order)] == [PaymentStatus.VOIDED]
    assert _stock(uow, shop.product) == (10, 0)
    assert service.expire_reservations(uow, bank) == []  # twice: nothing more


def test_a_payment_arriving_after_the_reservation_expired_is_voided(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    class SlowBank(AuthorisesThenFails):
        def authorise(self, request: AuthoriseRequest, **kw: Any) -> PaymentResult:
            # The reservation runs out and the job cancels the order while the bank works.
            clock.advance(service.RESERVATION + timedelta(minutes=1))
            with uow.fresh() as job:
                service.expire_reservations(job, self.bank)
            return self.bank.authorise(request, **kw)

    with pytest.raises(InvalidTransition) as refused:
        service.checkout_order(
            uow,
            SlowBank(bank, RuntimeError()),
            shop.buyer,
            checkout_in(shop),  # type: ignore[arg-type]
        )
    assert refused.value.extra["current_status"] == "cancelled"
    order = uow.session.scalars(select(Order)).one()
    assert [p.status for p in _payments(bank, uow, order)] == [PaymentStatus.VOIDED]
    assert _stock(uow, shop.product) == (10, 0)


def test_the_same_key_and_body_replay_the_order(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    data = checkout_in(shop, (shop.product, 2))
    first = service.checkout_order(uow, bank, shop.buyer, data, key="k-1", fingerprint="body-a")
    again = service.checkout_order(uow, bank, shop.buyer, data, key="k-1", fingerprint="body-a")
    assert (again.order.public_id, again.replayed) == (first.order.public_id, True)
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 1
    assert _stock(uow, shop.product) == (10, 2)
    with pytest.raises(IdempotencyKeyReused):
        service.checkout_order(uow, bank, shop.buyer, data, key="k-1", fingerprint="body-b")


def test_a_replayed_decline_is_the_same_decline(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    poor = f.make_customer(uow)
    pf.make_account(uow, poor, opening=100)
    uow.commit()
    data = checkout_in(shop)
    for _ in range(2):
        with pytest.raises(PaymentDeclined) as declined:
            service.checkout_order(uow, bank, f.principal(poor), data, key="k", fingerprint="x")
        assert declined.value.extra["decline_code"] == "insufficient_funds"
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 1


def test_without_consent_nothing_is_written(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    with pytest.raises(InvalidInput) as refused:
        service.checkout_order(
            uow, bank, shop.buyer, checkout_in(shop, share=False), key="k", fingerprint="x"
        )
    assert [e.field for e in refused.value.errors] == ["body.share_address_with_partner"]
    for table in (Order, IdempotencyRecord, WebhookEvent):
        assert uow.session.scalar(select(func.count()).select_from(table)) == 0
    assert _stock(uow, shop.product) == (10, 0)


def test_a_changed_total_is_refused_before_anything_is_reserved(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    from beyondbank.core.errors import Conflict

    with pytest.raises(Conflict) as changed:
        service.checkout_order(
            uow, bank, shop.buyer, checkout_in(shop, (shop.product, 2), expected_total="19.99")
        )
    assert changed.value.extra["total_minor"] == 2_000
    ok = service.checkout_order(
        uow, bank, shop.buyer, checkout_in(shop, (shop.product, 2), expected_total="20.00")
    )
    assert ok.order.total_minor == 2_000


def test_instalments_and_device_protection_are_on_the_order(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = service.checkout_order(
        uow,
        bank,
        shop.buyer,
        checkout_in(shop, (shop.other, 1), instalment_months=12, device_protection=True),
    ).order
    # 250.00 is in the 200.01-500.00 band: 14.99 a unit.
    assert (order.goods_minor, order.protection_minor, order.total_minor) == (25_000, 1_499, 26_499)
    assert (order.protection_policy_ref or "").startswith("DPP-")
    plan = order.instalment_plan or []
    # 26,499 / 12 = 2,208 rest 3: the first instalment carries the remainder.
    assert [i["amount_minor"] for i in plan] == [2_211] + [2_208] * 11
    assert [i["due"] for i in plan[:3]] == ["2026-12-22", "2027-01-22", "2027-02-22"]
    assert bank.payment(order.payment_ref or "").amount_minor == 26_499


def test_two_lines_of_one_product_reserve_their_sum(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    data = checkout_in(shop, (shop.product, 2), (shop.other, 1), (shop.product, 3))
    order = service.checkout_order(uow, bank, shop.buyer, data).order
    assert _stock(uow, shop.product) == (10, 5)
    assert order.goods_minor == 5 * 1_000 + 25_000
    lines = sorted((line.product_id, line.quantity) for line in lines_of(uow, order))
    assert lines == sorted([(shop.product.id, 5), (shop.other.id, 1)])
    service.cancel(uow, bank, shop.buyer, order.public_id)
    assert _stock(uow, shop.product) == (10, 0)  # the whole sum comes back


def test_two_lines_of_one_product_are_sold_out_on_their_sum(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    # 5 in stock: each line fits, their sum does not.
    with pytest.raises(SoldOut):
        service.checkout_order(
            uow, bank, shop.buyer, checkout_in(shop, (shop.other, 3), (shop.other, 3))
        )
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 0
    assert _stock(uow, shop.other) == (5, 0)
