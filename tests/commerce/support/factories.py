"""Orders in a given state, built directly (the orders package's own flow is tested there), so
that tickets and the survey can be tested on delivered orders."""

from __future__ import annotations

from datetime import timedelta

from beyondbank.commerce.models import Order, OrderLine, OrderStatus, Partner
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from tests.commerce.factories import make_product


def make_order(
    uow: UnitOfWork,
    customer: Customer,
    partner: Partner,
    *,
    status: OrderStatus = OrderStatus.DELIVERED,
    quantity: int = 2,
) -> Order:
    """An order of one product at the bank-client price (10.00 instead of 12.50), paid in full
    and, if delivered or later, captured in full."""
    product = make_product(uow, partner, public_minor=1_250, client_minor=1_000)
    now = uow.clock.now()
    goods = 1_000 * quantity
    shipped = status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED)
    order = Order(
        public_id=new_public_id("ord"),
        customer_id=customer.id,
        partner_id=partner.id,
        campaign_id=None,
        status=status,
        currency=partner.currency,
        goods_minor=goods,
        saving_minor=250 * quantity,
        protection_minor=0,
        total_minor=goods,
        captured_minor=goods if shipped else 0,
        refunded_minor=0,
        payment_ref=new_public_id("pay"),
        instalment_months=None,
        instalment_plan=None,
        protection_policy_ref=None,
        shipping_address=None,
        address_consent_at=None,
        commission_minor=None,
        placed_at=now - timedelta(days=5),
        reserved_until=None,
        return_window_ends_at=now + timedelta(days=14) if shipped else None,
        updated_at=now,
    )
    uow.session.add(order)
    uow.session.flush()
    uow.session.add(
        OrderLine(
            order_id=order.id,
            product_id=product.id,
            quantity=quantity,
            unit_minor=1_000,
            public_unit_minor=1_250,
            shipped_quantity=quantity if shipped else 0,
        )
    )
    uow.session.flush()
    return order
