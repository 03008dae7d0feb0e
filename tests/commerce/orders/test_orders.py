"""An order's life after checkout: fulfilment, shipments capturing their share, delivery, the
return window, completion with the bank's commission, returns, refunds and clawbacks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from beyondbank.commerce.models import Order, OrderStatus, Product, WebhookEvent
from beyondbank.commerce.orders import checkout, service
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind
from beyondbank.payments import service as payments
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import PaymentStatus, PaymentView
from beyondbank.settlement.models import PartyKind
from tests import factories as f
from tests.commerce.factories import ledger_kinds
from tests.commerce.orders.conftest import Shop, checkout_in
from tests.payments import factories as pf
from tests.settlement import factories as sf


def _stock(uow: UnitOfWork, product: Product) -> tuple[int, int]:
    uow.session.refresh(product)
    return product.stock_on_hand, product.stock_reserved


def _payments(uow: UnitOfWork, bank: BankCoreGateway, order: Order) -> list[PaymentView]:
    rows, _ = payments.list_payments(
        uow, f.principal(f.make_customer(uow)), payments.PaymentFilters(reference=order.public_id)
    )
    return [bank.payment(p.public_id) for p in reversed(rows)]  # oldest first


def _payable(uow: UnitOfWork, shop: Shop) -> int:
    book = chart.payable(uow, OwnerKind.PARTNER, shop.partner.public_id, "GBP")
    return ledger.balance(uow, book).posted.amount


def _paid(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, *lines: tuple[Product, int]) -> Order:
    return service.checkout_order(uow, bank, shop.buyer, checkout_in(shop, *lines)).order


def test_partial_shipments_capture_their_share_and_commission_accrues_once(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    sf.make_contract(
        uow, shop.partner.public_id, kind=PartyKind.PARTNER, starts_on=date(2026, 11, 1)
    )
    uow.commit()
    order = _paid(uow, bank, shop, (shop.product, 3), (shop.other, 1))
    assert order.total_minor == 28_000
    admin = shop.partner_admin
    with pytest.raises(InvalidTransition) as early:
        service.ship(uow, bank, admin, order.public_id)
    assert early.value.extra["current_status"] == "paid"
    service.fulfil(uow, admin, order.public_id)

    first = service.ship(
        uow, bank, admin, order.public_id, lines=[service.ShipLine(shop.product.sku, 2)]
    )
    assert first.amount_minor == 2_000
    assert _stock(uow, shop.product) == (8, 1)
    order = service.partner_order(uow, admin, order.public_id)
    assert (order.status, order.captured_minor) == (OrderStatus.FULFILLING, 2_000)
    [authorisation] = _payments(uow, bank, order)
    assert (authorisation.status, authorisation.captured_minor) == (PaymentStatus.CAPTURED, 2_000)
    assert pf.deposit_figures(uow, shop.account).pending == 0  # the rest of the hold released

    second = service.ship(uow, bank, admin, order.public_id, carrier="Royal Mail", tracking="RM1")
    assert second.amount_minor == 26_000
    order = service.partner_order(uow, admin, order.public_id)
    assert (order.status, order.captured_minor) == (OrderStatus.SHIPPED, 28_000)
    assert [p.captured_minor for p in _payments(uow, bank, order)] == [2_000, 26_000]
    assert (_stock(uow, shop.product), _stock(uow, shop.other)) == ((7, 0), (4, 0))
    assert _payable(uow, shop) == 28_000
    assert pf.deposit_figures(uow, shop.account).posted == 100_000 - 28_000

    service.deliver(uow, admin, order.public_id)
    assert service.complete_orders(uow) == []  # inside the 14-day return window
    clock.advance(timedelta(days=14, seconds=1))
    assert service.complete_orders(uow) == [order.public_id]
    assert service.complete_orders(uow) == []  # twice: posted once
    uow.session.refresh(order)
    assert (order.status, order.commission_minor) == (OrderStatus.COMPLETED, 1_400)  # 5%
    assert ledger_kinds(uow, order).count("commission") == 1
    assert _payable(uow, shop) == 28_000 - 1_400

    # A faulty phone comes back after the window; the partner accepts it.
    service.confirm_returned(
        uow, bank, admin, order.public_id, lines=[service.ShipLine(shop.other.sku, 1)]
    )
    uow.session.refresh(order)
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, 25_000)
    # floor(1,400 × 25,000 / 28,000) = 1,250 clawed back; 150 stays with the bank.
    assert order.commission_minor == 150
    assert ledger_kinds(uow, order).count("commission.clawback") == 1
    assert _payable(uow, shop) == 28_000 - 25_000 - 1_400 + 1_250
    assert _stock(uow, shop.other) == (5, 0)
    assert [p.refunded_minor for p in _payments(uow, bank, order)] == [0, 25_000]


def test_a_return_within_the_window_refunds_everything(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop, (shop.product, 2))
    admin = shop.partner_admin
    service.fulfil(uow, admin, order.public_id)
    service.ship(uow, bank, admin, order.public_id)
    service.deliver(uow, admin, order.public_id)
    clock.advance(timedelta(days=3))
    service.request_return(uow, shop.buyer, order.public_id, "too small")
    with pytest.raises(InvalidTransition):  # not again
        service.request_return(uow, shop.buyer, order.public_id, "")
    service.confirm_returned(uow, bank, admin, order.public_id)
    uow.session.refresh(order)
    assert (order.status, order.refunded_minor, order.commission_minor) == (
        OrderStatus.REFUNDED,
        2_000,
        None,
    )
    assert pf.deposit_figures(uow, shop.account).posted == 100_000
    assert _stock(uow, shop.product) == (10, 0)
    assert service.complete_orders(uow) == []
    events = uow.session.scalars(select(WebhookEvent.event_type).order_by(WebhookEvent.id)).all()
    assert events == [
        "order.created",
        "order.paid",
        "order.shipped",
        "order.delivered",
        "order.return_requested",
        "order.returned",
        "order.refunded",
    ]


def test_no_return_after_the_window(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop)
    admin = shop.partner_admin
    service.fulfil(uow, admin, order.public_id)
    service.ship(uow, bank, admin, order.public_id)
    service.deliver(uow, admin, order.public_id)
    clock.advance(timedelta(days=15))
    with pytest.raises(Conflict, match="return window"):
        service.request_return(uow, shop.buyer, order.public_id, "")


def test_cancelling_a_paid_order_voids_the_authorisation(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = _paid(uow, bank, shop, (shop.product, 4))
    service.cancel(uow, bank, shop.buyer, order.public_id)
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED
    assert [p.status for p in _payments(uow, bank, order)] == [PaymentStatus.VOIDED]
    assert _stock(uow, shop.product) == (10, 0)
    assert pf.deposit_figures(uow, shop.account).pending == 0


def test_a_shipped_order_cannot_be_cancelled(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = _paid(uow, bank, shop)
    service.fulfil(uow, shop.partner_admin, order.public_id)
    service.ship(uow, bank, shop.partner_admin, order.public_id)
    with pytest.raises(InvalidTransition) as refused:
        service.cancel(uow, bank, shop.buyer, order.public_id)
    assert refused.value.extra["current_status"] == "shipped"
    assert "shipped" in refused.value.detail


def test_a_shipment_must_match_the_order(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = _paid(uow, bank, shop, (shop.product, 2))
    service.fulfil(uow, shop.partner_admin, order.public_id)
    with pytest.raises(InvalidInput) as bad:
        service.ship(
            uow,
            bank,
            shop.partner_admin,
            order.public_id,
            lines=[service.ShipLine("NOPE", 1), service.ShipLine(shop.product.sku, 3)],
        )
    assert [e.field for e in bad.value.errors] == ["body.lines.0.sku", "body.lines.1.quantity"]
    assert _stock(uow, shop.product) == (10, 2)


def test_other_customers_and_partners_see_nothing(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = _paid(uow, bank, shop)
    stranger = f.principal(f.make_customer(uow))
    rival = f.principal(f.make_user(uow, Role.PARTNER_ADMIN))
    with pytest.raises(NotFound):
        service.customer_order(uow, stranger, order.public_id)
    with pytest.raises(NotFound):
        service.partner_order(uow, rival, order.public_id)
    with pytest.raises(NotFound):
        service.fulfil(uow, rival, order.public_id)
    rows, _ = service.list_partner_orders(uow, rival, status=None, cursor=None, limit=10)
    assert rows == []


def test_the_partner_learns_the_address_and_nothing_else_about_the_customer(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = _paid(uow, bank, shop)
    payload = checkout.partner_payload(uow, order)
    text = str(payload)
    assert payload["shipping_address"]["recipient"] == "Amelia Clarke"
    for secret in (shop.customer.public_id, shop.customer.bank_ref, shop.account.public_id):
        assert secret not in text
    assert set(payload) == {
        "order_id",
        "status",
        "currency",
        "goods_minor",
        "protection_minor",
        "total_minor",
        "captured_minor",
        "refunded_minor",
        "lines",
        "shipping_address",
    }
    assert uow.session.scalar(select(func.count()).select_from(WebhookEvent)) == 2
