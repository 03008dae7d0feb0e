"""What a checkout writes, row by row: the same on SQLite (the Python path) and on PostgreSQL (the
functions of migration 0009): the order, its lines and events, the partner's events and their
deliveries, the claim of the key, the stock, the payment, its operation and audit record, the
day's usage and the ledger's hold."""

from __future__ import annotations

from sqlalchemy import select

from beyondbank.commerce.models import (
    Order,
    OrderEvent,
    OrderLine,
    Product,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from beyondbank.commerce.orders import service
from beyondbank.commerce.webhooks import service as webhooks
from beyondbank.core.authz import SYSTEM
from beyondbank.core.models import AuditEvent, IdempotencyRecord
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import verify
from beyondbank.ledger.models import LedgerTransaction, TransactionStatus
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.models import DailyUsage, Payment
from beyondbank.payments.models import PaymentOperation as Operation
from tests.commerce.orders.conftest import Shop, checkout_in


def _endpoint(uow: UnitOfWork, shop: Shop, *types: str) -> WebhookEndpoint:
    data = webhooks.EndpointIn(
        url="https://partner.example/hooks",
        event_types=list(types),
        partner_id=shop.partner.public_id,
    )
    return webhooks.create_endpoint(uow, SYSTEM, data, production=False).endpoint


def test_a_checkout_writes_the_order_the_partners_events_and_the_payment(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    everything = _endpoint(uow, shop)
    paid_only = _endpoint(uow, shop, "order.paid")
    gone = _endpoint(uow, shop)
    webhooks.deactivate_endpoint(uow, SYSTEM, gone.public_id)
    uow.commit()

    done = service.checkout_order(
        uow,
        bank,
        shop.buyer,
        checkout_in(
            shop,
            (shop.product, 2),
            (shop.other, 1),
            device_protection=True,
            instalment_months=3,
            expected_total="290.97",
        ),
        key="key-1",
        fingerprint="body-1",
    )
    order = done.order
    session = uow.session

    # 2 × 10.00 + 250.00, protection 2 × 2.99 + 14.99; saving 2 × 2.50 + 50.00
    assert (order.status.value, order.goods_minor, order.protection_minor) == (
        "paid",
        27_000,
        2_097,
    )
    assert (order.total_minor, order.saving_minor, order.captured_minor) == (29_097, 5_500, 0)
    stored = session.scalars(select(Order).where(Order.public_id == order.public_id)).one()
    session.refresh(stored)
    assert stored.status.value == "paid"
    assert stored.reserved_until is None
    assert stored.protection_policy_ref == f"DPP-{order.public_id.split('_', 1)[1]}"
    assert [i["amount_minor"] for i in stored.instalment_plan or []] == [9_699, 9_699, 9_699]
    assert stored.shipping_address == checkout_in(shop).shipping_address
    lines = session.scalars(
        select(OrderLine).where(OrderLine.order_id == stored.id).order_by(OrderLine.id)
    ).all()
    assert [(line.product_id, line.quantity, line.unit_minor) for line in lines] == [
        (shop.product.id, 2, 1_000),
        (shop.other.id, 1, 25_000),
    ]
    events = session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == stored.id).order_by(OrderEvent.id)
    ).all()
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "pending_payment"),
        ("pending_payment", "paid"),
    ]
    session.expire_all()
    stock = {p.id: p.stock_reserved for p in session.scalars(select(Product)).all()}
    assert (stock[shop.product.id], stock[shop.other.id]) == (2, 1)

    told = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert [e.event_type for e in told] == ["order.created", "order.paid"]
    assert [e.payload["data"]["status"] for e in told] == ["pending_payment", "paid"]
    assert told[1].payload["data"]["lines"][0]["sku"] == shop.product.sku
    assert told[1].payload["data"]["shipping_address"]["recipient"] == "Amelia Clarke"
    deliveries = {
        (d.event_id, d.endpoint_id, d.status.value)
        for d in session.scalars(select(WebhookDelivery)).all()
    }
    assert deliveries == {
        (told[0].id, everything.id, "pending"),
        (told[1].id, everything.id, "pending"),
        (told[1].id, paid_only.id, "pending"),
    }

    claim = session.scalars(select(IdempotencyRecord)).one()
    assert (claim.key, claim.state, claim.status_code) == ("key-1", "completed", 201)
    assert claim.response == {"order_id": order.public_id}

    payment = session.scalars(select(Payment).where(Payment.public_id == order.payment_ref)).one()
    assert (payment.status.value, payment.amount_minor, payment.reference) == (
        "authorised",
        29_097,
        order.public_id,
    )
    operation = session.scalars(select(Operation).where(Operation.payment_id == payment.id)).one()
    assert operation.idempotency_key == f"shop:{order.public_id}:authorise"
    assert operation.result == bank.payment(payment.public_id).as_json()
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == payment.public_id)
    ).one()
    assert audited.action == "payment.authorised"
    assert audited.after is not None
    assert audited.after["status"] == "authorised"
    assert session.scalars(select(DailyUsage.used_minor)).one() == 29_097
    hold = session.get_one(LedgerTransaction, payment.hold_transaction_id)
    assert hold.status is TransactionStatus.PENDING
    assert hold.reference == payment.public_id
    assert hold.details == {"order_reference": order.public_id}
    assert verify.run(session).ok

    again = service.checkout_order(
        uow,
        bank,
        shop.buyer,
        checkout_in(shop, (shop.product, 2)),
        key="key-1",
        fingerprint="body-1",
    )
    assert again.replayed
    assert again.order.public_id == order.public_id
