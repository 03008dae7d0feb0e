"""Part of an order returned: before completion the kept units go back to `delivered` and
complete after the return window, accruing commission on what was kept only; the protection
premium of the units kept reaches the insurer and the returned units' share is refunded (or
handed back by the insurer after completion); the ledger balances on every path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from beyondbank.commerce.models import (
    Order,
    OrderEvent,
    OrderStatus,
    Partner,
    Product,
    ProtectionPolicy,
)
from beyondbank.commerce.orders import crosssell, service, transitions
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.money import bps_of
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.settlement.models import PartyKind
from beyondbank.settlement.statements import SHOP_PROTECTION_CATEGORY
from tests import factories as f
from tests.commerce.factories import ledger_kinds, make_product
from tests.commerce.orders.conftest import ADDRESS, Shop
from tests.conftest import T0
from tests.payments import factories as pf
from tests.settlement import factories as sf

S = OrderStatus
RETAILER_BPS, INSURER_BPS = 500, 3_000  # the contracts below: 5% on goods, 30% on premiums
# The shop fixture's products: 10.00 (premium 2.99 a unit) and 250.00 (premium 14.99 a unit).
MUG, PHONE = 1_000, 25_000
MUG_PREMIUM, PHONE_PREMIUM = 299, 1_499


def _payable(uow: UnitOfWork, party: Partner) -> int:
    book = chart.payable(uow, OwnerKind.PARTNER, party.public_id, "GBP")
    return ledger.balance(uow, book).posted.amount


def _transit(uow: UnitOfWork) -> int:
    return ledger.balance(uow, chart.premiums_in_transit(uow, "GBP")).posted.amount


def _contracts(uow: UnitOfWork, retailer: Partner, insurer: Partner | None) -> None:
    sf.make_contract(uow, retailer.public_id, kind=PartyKind.PARTNER, starts_on=date(2026, 11, 1))
    if insurer is not None:
        sf.make_contract(
            uow,
            insurer.public_id,
            kind=PartyKind.PARTNER,
            starts_on=date(2026, 11, 1),
            category_overrides={SHOP_PROTECTION_CATEGORY: INSURER_BPS},
        )
    uow.commit()


def _delivered(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    shop: Shop,
    *lines: tuple[Product, int],
    protection: bool = False,
) -> Order:
    data = service.CheckoutIn(
        partner_id=shop.partner.public_id,
        shipping_address=dict(ADDRESS),
        share_address_with_partner=True,
        items=[Wanted(p.public_id, q) for p, q in lines],
        device_protection=protection,
    )
    order = service.checkout_order(uow, bank, shop.buyer, data).order
    service.fulfil(uow, shop.partner_admin, order.public_id)
    service.ship(uow, bank, shop.partner_admin, order.public_id)
    service.deliver(uow, shop.partner_admin, order.public_id)
    return order


def _return(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, order: Order, *lines: tuple[Product, int]
) -> Order:
    service.request_return(uow, shop.buyer, order.public_id, "not needed")
    return service.confirm_returned(
        uow,
        bank,
        shop.partner_admin,
        order.public_id,
        lines=[service.ShipLine(p.sku, q) for p, q in lines],
    )


def _policy(uow: UnitOfWork, order: Order) -> ProtectionPolicy:
    policy = uow.session.get(ProtectionPolicy, order.id, populate_existing=True)
    assert policy is not None
    return policy


def test_the_kept_lines_complete_after_the_window_with_commission_on_them_only(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contracts(uow, shop.partner, None)
    order = _delivered(uow, bank, shop, (shop.product, 3), (shop.other, 1))
    clock.advance(timedelta(days=2))
    order = _return(uow, bank, shop, order, (shop.other, 1))
    assert (order.status, order.refunded_minor) == (S.DELIVERED, PHONE)
    assert pf.deposit_figures(uow, shop.account).posted == 100_000 - 3 * MUG
    uow.session.refresh(shop.other)
    assert shop.other.stock_on_hand == 5  # back on hand
    last = uow.session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id.desc())
    ).first()
    assert last is not None
    assert (last.from_status, last.to_status, last.note) == (
        "returned",
        "delivered",
        service.PARTLY_RETURNED,
    )
    # The partner cannot "deliver" it again (that would restart the window).
    with pytest.raises(InvalidTransition):
        service.deliver(uow, shop.partner_admin, order.public_id)

    assert service.complete_orders(uow) == []  # the window runs from the delivery
    clock.advance(timedelta(days=12, seconds=1))
    assert service.complete_orders(uow) == [order.public_id]
    assert service.complete_orders(uow) == []
    uow.session.refresh(order)
    assert (order.status, order.commission_minor) == (S.COMPLETED, bps_of(3 * MUG, RETAILER_BPS))
    assert ledger_kinds(uow, order).count("commission") == 1
    assert _payable(uow, shop.partner) == 3 * MUG - bps_of(3 * MUG, RETAILER_BPS)
    assert verify.run(uow.session).ok


def test_a_second_partial_return_within_the_window_is_refunded_too(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contracts(uow, shop.partner, None)
    order = _delivered(uow, bank, shop, (shop.product, 4))
    order = _return(uow, bank, shop, order, (shop.product, 1))
    clock.advance(timedelta(days=3))
    order = _return(uow, bank, shop, order, (shop.product, 2))  # a refund of its own
    assert (order.status, order.refunded_minor) == (S.DELIVERED, 3 * MUG)
    assert pf.deposit_figures(uow, shop.account).posted == 100_000 - MUG
    # Repeating the partner's confirmation changes nothing: the order is no longer `returned`.
    with pytest.raises(InvalidTransition):
        service.confirm_returned(uow, bank, shop.partner_admin, order.public_id)
    clock.advance(timedelta(days=12))
    assert service.complete_orders(uow) == [order.public_id]
    uow.session.refresh(order)
    assert order.commission_minor == bps_of(MUG, RETAILER_BPS)
    assert verify.run(uow.session).ok


def test_the_premium_of_the_kept_insured_item_reaches_the_insurer(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contracts(uow, shop.partner, shop.insurer)
    order = _delivered(uow, bank, shop, (shop.product, 2), (shop.other, 1), protection=True)
    premium = 2 * MUG_PREMIUM + PHONE_PREMIUM
    assert order.protection_minor == premium
    order = _return(uow, bank, shop, order, (shop.product, 2))  # the phone is kept
    # The mugs and their premium come back to the customer.
    assert (order.status, order.refunded_minor) == (S.DELIVERED, 2 * MUG + 2 * MUG_PREMIUM)
    policy = _policy(uow, order)
    assert (policy.premium_minor, policy.passed_at, policy.cancelled_at) == (
        PHONE_PREMIUM,
        None,
        None,
    )
    clock.advance(timedelta(days=15))
    assert service.complete_orders(uow) == [order.public_id]
    policy = _policy(uow, order)
    insurer_cut = bps_of(PHONE_PREMIUM, INSURER_BPS)
    assert (policy.passed_at, policy.commission_minor) == (clock.now(), insurer_cut)
    uow.session.refresh(order)
    assert order.commission_minor == bps_of(PHONE, RETAILER_BPS)
    assert _payable(uow, shop.insurer) == PHONE_PREMIUM - insurer_cut
    assert _payable(uow, shop.partner) == PHONE - bps_of(PHONE, RETAILER_BPS)
    assert pf.deposit_figures(uow, shop.account).posted == 100_000 - PHONE - PHONE_PREMIUM
    assert _transit(uow) == 0
    assert verify.run(uow.session).ok


def test_the_premium_of_a_returned_insured_item_is_refunded_before_completion(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contracts(uow, shop.partner, shop.insurer)
    order = _delivered(uow, bank, shop, (shop.product, 2), (shop.other, 1), protection=True)
    order = _return(uow, bank, shop, order, (shop.other, 1))  # the phone comes back
    assert order.refunded_minor == PHONE + PHONE_PREMIUM
    assert _policy(uow, order).premium_minor == 2 * MUG_PREMIUM
    clock.advance(timedelta(days=15))
    service.complete_orders(uow)
    kept_premium = 2 * MUG_PREMIUM
    assert _payable(uow, shop.insurer) == kept_premium - bps_of(kept_premium, INSURER_BPS)
    assert _payable(uow, shop.partner) == 2 * MUG - bps_of(2 * MUG, RETAILER_BPS)
    assert _transit(uow) == 0
    assert verify.run(uow.session).ok


def test_an_insured_item_returned_after_completion_takes_its_premium_back_from_the_insurer(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contracts(uow, shop.partner, shop.insurer)
    order = _delivered(uow, bank, shop, (shop.product, 2), (shop.other, 1), protection=True)
    premium = 2 * MUG_PREMIUM + PHONE_PREMIUM
    clock.advance(timedelta(days=15))
    service.complete_orders(uow)
    commission = bps_of(2 * MUG + PHONE, RETAILER_BPS)
    insurer_cut = bps_of(premium, INSURER_BPS)
    # A faulty phone, accepted after the window: it and its premium are refunded.
    order = service.confirm_returned(
        uow, bank, shop.partner_admin, order.public_id, lines=[service.ShipLine(shop.other.sku, 1)]
    )
    assert (order.status, order.refunded_minor) == (S.REFUNDED, PHONE + PHONE_PREMIUM)
    policy = _policy(uow, order)
    insurer_back = insurer_cut * PHONE_PREMIUM // premium
    assert (policy.premium_minor, policy.commission_minor, policy.cancelled_at) == (
        2 * MUG_PREMIUM,
        insurer_cut - insurer_back,
        None,
    )
    retailer_back = commission * PHONE // (2 * MUG + PHONE)
    assert order.commission_minor == commission - retailer_back
    assert _payable(uow, shop.insurer) == 2 * MUG_PREMIUM - (insurer_cut - insurer_back)
    assert _payable(uow, shop.partner) == 2 * MUG - (commission - retailer_back)
    assert _transit(uow) == 0
    assert verify.run(uow.session).ok


def test_the_premium_splits_exactly_by_the_bands() -> None:
    lines = [(MUG, 3, 1), (PHONE, 2, 2)]
    premium = crosssell.protection_for([(u, q) for u, q, _ in lines])
    assert crosssell.protection_share(premium, lines) == MUG_PREMIUM + 2 * PHONE_PREMIUM
    assert crosssell.protection_share(premium, [(u, q, q) for u, q, _ in lines]) == premium
    assert crosssell.protection_share(premium, [(u, q, 0) for u, q, _ in lines]) == 0


unit_prices = st.integers(min_value=1, max_value=90_000)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=100_000),
    st.lists(
        st.tuples(unit_prices, st.integers(1, 9)).flatmap(
            lambda uq: st.tuples(st.just(uq[0]), st.just(uq[1]), st.integers(0, uq[1]))
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_a_premium_splits_into_parts_that_sum_to_it(
    premium: int, lines: list[tuple[int, int, int]]
) -> None:
    """Whatever the premium (priced by these bands or not): the returned share and the kept one
    are never negative and sum to it, and all units returned take the whole premium."""
    returned = crosssell.protection_share(premium, lines)
    kept_alone = crosssell.protection_share(premium, [(u, q, q - r) for u, q, r in lines])
    assert 0 <= returned <= premium
    # The kept units take the remainder: their own share rounded down, plus at most the unit
    # lost to rounding.
    assert kept_alone <= premium - returned <= kept_alone + 1
    assert crosssell.protection_share(premium, [(u, q, q) for u, q, _ in lines]) == premium


@dataclass
class Party:
    shop: Shop
    first: Product
    second: Product
    price: dict[int, int]  # product id → the bank-client price


def _fresh_shop(uow: UnitOfWork, insurer: Partner, mug: int, phone: int) -> Party:
    """A partner of its own per example, so that balances start at zero."""
    partner = f.make_partner(uow, return_window_days=14)
    customer = f.make_customer(uow)
    account = pf.make_account(uow, customer, opening=10_000_000)
    admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)
    first = make_product(uow, partner, public_minor=mug + 1, client_minor=mug, stock=20)
    second = make_product(uow, partner, public_minor=phone + 1, client_minor=phone, stock=20)
    uow.commit()
    made = Shop(
        partner,
        first,
        second,
        customer,
        account,
        f.principal(customer),
        f.principal(admin),
        insurer,
    )
    _contracts(uow, partner, None)
    return Party(made, first, second, {first.id: mug, second.id: phone})


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mug=st.integers(min_value=50, max_value=60_000),
    phone=st.integers(min_value=50, max_value=120_000),
    bought=st.tuples(st.integers(1, 5), st.integers(1, 3)),
    data=st.data(),
    protection=st.booleans(),
)
def test_a_partial_return_splits_refund_commission_and_premium_pro_rata(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    shop: Shop,
    clock: FixedClock,
    mug: int,
    phone: int,
    bought: tuple[int, int],
    data: st.DataObject,
    protection: bool,
) -> None:
    clock.set(T0)  # each example from the same moment
    party = _fresh_shop(uow, shop.insurer, mug, phone)
    quantities = {party.first: bought[0], party.second: bought[1]}
    back = {p: data.draw(st.integers(0, q), label=p.sku) for p, q in quantities.items()}
    if sum(back.values()) in (0, sum(quantities.values())):  # make it partial: some back, some kept
        back[party.first] = bought[0] - 1 if sum(back.values()) else 1
    assert 0 < sum(back.values()) < sum(quantities.values())
    insurer_before = _payable(uow, shop.insurer)
    order = _delivered(uow, bank, party.shop, *quantities.items(), protection=protection)
    premium = order.protection_minor
    lines = [(party.price[p.id], q, back[p]) for p, q in quantities.items()]
    premium_back = crosssell.protection_share(premium, lines)
    goods_back = sum(u * r for u, _q, r in lines)
    order = _return(uow, bank, party.shop, order, *((p, n) for p, n in back.items() if n))
    assert (order.status, order.refunded_minor) == (S.DELIVERED, goods_back + premium_back)

    clock.advance(timedelta(days=15))
    assert order.public_id in service.complete_orders(uow)
    uow.session.refresh(order)
    kept_goods = order.goods_minor - goods_back
    kept_premium = premium - premium_back
    assert order.commission_minor == bps_of(kept_goods, RETAILER_BPS)
    assert _payable(uow, party.shop.partner) == kept_goods - bps_of(kept_goods, RETAILER_BPS)
    insurer_got = _payable(uow, shop.insurer) - insurer_before
    # The insurer has no contract in this test: the bank takes none of the premium.
    assert insurer_got == kept_premium
    paid = pf.deposit_figures(uow, party.shop.account).posted
    assert paid == 10_000_000 - kept_goods - kept_premium
    assert _transit(uow) == 0
    assert verify.run(uow.session).ok


def test_only_the_service_ends_a_partial_return_in_delivered() -> None:
    assert transitions.allowed(S.RETURNED, S.DELIVERED)
    assert not transitions.partner_may(S.RETURNED, S.DELIVERED)  # no "Mark delivered" for it
    assert transitions.partner_may(S.SHIPPED, S.DELIVERED)
    assert S.REFUNDED in transitions.FINAL
