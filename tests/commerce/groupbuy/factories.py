"""Group-buy builders for the tests: campaigns with their tiers, and paid campaign orders whose
payments were really authorised and captured through the bank core gateway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from beyondbank.commerce.groupbuy import service
from beyondbank.commerce.models import (
    CampaignStatus,
    GroupBuy,
    GroupBuyTier,
    Order,
    OrderLine,
    OrderStatus,
    Partner,
    Product,
    ProductPrice,
)
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from beyondbank.payments.gateway import AuthoriseRequest, PayeeKind, PaymentGateway
from beyondbank.payments.models import DepositAccount
from tests.factories import make_customer
from tests.payments.factories import make_account

DEFAULT_TIERS = ((1, 900), (10, 800), (20, 700))


def make_campaign(
    uow: UnitOfWork,
    partner: Partner,
    product: Product,
    *,
    tiers: tuple[tuple[int, int], ...] = DEFAULT_TIERS,
    opens_in: timedelta = timedelta(hours=-1),
    lasts: timedelta = timedelta(days=2),
    **over: Any,
) -> GroupBuy:
    """A campaign written directly (open by default: its window began an hour ago)."""
    now = uow.clock.now()
    campaign = GroupBuy(
        public_id=new_public_id("gbc"),
        partner_id=partner.id,
        product_id=product.id,
        title=over.pop("title", f"Group buy of {product.title}"),
        currency=over.pop("currency", product.currency),
        opens_at=now + opens_in,
        closes_at=now + opens_in + lasts,
        min_total_units=over.pop("min_total_units", 10),
        max_total_units=over.pop("max_total_units", None),
        per_customer_limit=over.pop("per_customer_limit", 5),
        units_joined=0,
        status=over.pop("status", CampaignStatus.SCHEDULED),
        final_unit_minor=None,
        closed_at=None,
        created_at=now,
        updated_at=now,
        **over,
    )
    uow.session.add(campaign)
    uow.session.flush()
    for min_units, unit_minor in tiers:
        uow.session.add(
            GroupBuyTier(campaign_id=campaign.id, min_units=min_units, unit_minor=unit_minor)
        )
    uow.session.flush()
    return campaign


def make_paid_order(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    campaign: GroupBuy,
    *,
    quantity: int,
    customer: Customer | None = None,
    account: DepositAccount | None = None,
    unit_minor: int | None = None,
    status: OrderStatus = OrderStatus.PAID,
    join: bool = True,
) -> PaidOrder:
    """A campaign order as the checkout leaves it: the customer joined at the entry price, the
    amount was authorised and captured from their deposit account by the bank core gateway, and
    the order is paid (`status`) with `campaign_id` set. The campaign's product is priced at
    its public price from the product's current price row."""
    customer = customer or make_customer(uow)
    account = account or make_account(uow, customer, opening=1_000_000)
    price = (
        service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=quantity)
        if join
        else None
    )
    unit = unit_minor or price or service.entry_unit_minor(uow, campaign.id)
    public_unit = uow.session.scalars(
        select(ProductPrice.public_minor)
        .where(ProductPrice.product_id == campaign.product_id)
        .order_by(ProductPrice.valid_from.desc())
        .limit(1)
    ).one()
    total = unit * quantity
    partner = uow.session.get(Partner, campaign.partner_id)
    assert partner is not None
    now = uow.clock.now()
    order = Order(
        public_id=new_public_id("ord"),
        customer_id=customer.id,
        partner_id=campaign.partner_id,
        campaign_id=campaign.id,
        status=OrderStatus.PENDING_PAYMENT,
        currency=campaign.currency,
        goods_minor=total,
        saving_minor=(public_unit - unit) * quantity,
        protection_minor=0,
        total_minor=total,
        captured_minor=0,
        refunded_minor=0,
        placed_at=now,
        updated_at=now,
    )
    uow.session.add(order)
    uow.session.flush()
    # The checkout holds the stock for the order until it ships.
    uow.session.execute(
        update(Product)
        .where(Product.id == campaign.product_id)
        .values(stock_reserved=Product.stock_reserved + quantity)
    )
    uow.session.add(
        OrderLine(
            order_id=order.id,
            product_id=campaign.product_id,
            quantity=quantity,
            unit_minor=unit,
            public_unit_minor=public_unit,
        )
    )
    uow.commit()
    authorised = gateway.authorise(
        AuthoriseRequest(
            account_id=account.public_id,
            amount_minor=total,
            currency=campaign.currency,
            payee_kind=PayeeKind.PARTNER,
            payee_id=partner.public_id,
            reference=order.public_id,
        ),
        key=f"test:authorise:{order.public_id}",
    )
    assert authorised.approved, authorised.decline_code
    captured = gateway.capture(authorised.payment.id, key=f"test:capture:{order.public_id}")
    order.payment_ref = captured.payment.id
    order.captured_minor = captured.payment.captured_minor
    order.status = status
    uow.commit()
    return PaidOrder(order, customer, account, captured.payment.id)


@dataclass
class PaidOrder:
    order: Order
    customer: Customer
    account: DepositAccount
    payment_id: str
