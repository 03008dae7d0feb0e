"""Group-buy orders: the customer pays the entry tier to join (captured at checkout), within the
per-customer limit; cancelling gives the units back and refunds the capture."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from beyondbank.commerce.models import GroupBuy, GroupBuyParticipant, Order, OrderStatus
from beyondbank.commerce.orders import service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.errors import LimitReached
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import PaymentStatus
from tests.commerce.groupbuy.factories import make_campaign
from tests.commerce.orders.conftest import Shop, checkout_in
from tests.payments import factories as pf


@pytest.fixture
def campaign(uow: UnitOfWork, shop: Shop) -> GroupBuy:
    made = make_campaign(uow, shop.partner, shop.product, per_customer_limit=3)
    uow.commit()
    return made


def _join(shop: Shop, campaign: GroupBuy, quantity: int) -> service.CheckoutIn:
    data = checkout_in(shop)
    return service.CheckoutIn(
        partner_id=data.partner_id,
        shipping_address=data.shipping_address,
        share_address_with_partner=True,
        items=[Wanted(shop.product.public_id, quantity, campaign.public_id)],
    )


def _units(uow: UnitOfWork, campaign: GroupBuy) -> tuple[int, int]:
    uow.session.refresh(campaign)
    held = uow.session.scalars(
        select(GroupBuyParticipant.units).where(GroupBuyParticipant.campaign_id == campaign.id)
    ).one_or_none()
    return campaign.units_joined, held or 0


def test_joining_pays_the_entry_tier_at_once(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, campaign: GroupBuy
) -> None:
    order = service.checkout_order(uow, bank, shop.buyer, _join(shop, campaign, 2)).order
    assert (order.status, order.campaign_id) == (OrderStatus.PAID, campaign.id)
    assert (order.total_minor, order.captured_minor) == (1_800, 1_800)  # 2 × 9.00
    payment = bank.payment(order.payment_ref or "")
    assert (payment.status, payment.captured_minor) == (PaymentStatus.CAPTURED, 1_800)
    assert pf.deposit_figures(uow, shop.account).posted == 100_000 - 1_800
    assert _units(uow, campaign) == (2, 2)

    # Shipping takes nothing more: it was paid in full when the customer joined.
    service.fulfil(uow, shop.partner_admin, order.public_id)
    shipment = service.ship(uow, bank, shop.partner_admin, order.public_id)
    assert shipment.amount_minor == 0


def test_the_per_customer_limit_refuses_and_writes_nothing(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, campaign: GroupBuy
) -> None:
    service.checkout_order(uow, bank, shop.buyer, _join(shop, campaign, 2))
    with pytest.raises(LimitReached):
        service.checkout_order(uow, bank, shop.buyer, _join(shop, campaign, 2))
    assert _units(uow, campaign) == (2, 2)
    assert len(uow.session.scalars(select(Order)).all()) == 1
    uow.session.refresh(shop.product)
    assert shop.product.stock_reserved == 2


def test_cancelling_gives_the_units_back_and_refunds(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, campaign: GroupBuy
) -> None:
    order = service.checkout_order(uow, bank, shop.buyer, _join(shop, campaign, 3)).order
    service.cancel(uow, bank, shop.buyer, order.public_id)
    uow.session.refresh(order)
    assert (order.status, order.refunded_minor) == (OrderStatus.CANCELLED, 2_700)
    assert bank.payment(order.payment_ref or "").status is PaymentStatus.REFUNDED
    assert pf.deposit_figures(uow, shop.account).posted == 100_000
    assert _units(uow, campaign) == (0, 0)


def test_the_offers_for_a_group_buy_cart_are_on_the_entry_price(
    uow: UnitOfWork, shop: Shop, campaign: GroupBuy
) -> None:
    service.add_item(
        uow,
        shop.buyer,
        product_id=shop.product.public_id,
        quantity=2,
        campaign_id=campaign.public_id,
    )
    offers = service.offers(uow, shop.buyer, shop.partner.public_id)
    assert offers.goods_minor == 1_800  # 2 × the entry tier's 9.00, not the bank price of 10.00
    assert sum(i.amount_minor for i in offers.instalments[3]) == 1_800
    (cart,) = service.carts(uow, shop.buyer)
    assert (cart.lines[0].unit_minor, cart.goods_minor) == (900, 1_800)


def test_the_per_customer_limit_counts_two_lines_of_the_group_buy_together(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, campaign: GroupBuy
) -> None:
    # A limit of 3: each line fits, their sum does not.
    data = _join(shop, campaign, 2)
    twice = service.CheckoutIn(
        partner_id=data.partner_id,
        shipping_address=data.shipping_address,
        share_address_with_partner=True,
        items=[*data.items, *data.items],
    )
    with pytest.raises(LimitReached):
        service.checkout_order(uow, bank, shop.buyer, twice)
    assert _units(uow, campaign) == (0, 0)
    assert uow.session.scalars(select(Order)).all() == []
