"""Group-buy orders returned in part after their campaign closed at a lower tier: the returned
units are refunded at what the customer paid for them (the entry price less the close's
price-difference refund per unit), whether before or after completion; the order's refunds
never exceed its capture, the commission accrues on what the customer kept at the final price,
and the ledger balances."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beyondbank.commerce.groupbuy import closing
from beyondbank.commerce.models import GroupBuy, Order, OrderStatus, Partner
from beyondbank.commerce.orders import crosssell, service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.money import bps_of
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.settlement.models import PartyKind
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign
from tests.commerce.orders.conftest import ADDRESS, Shop
from tests.conftest import T0
from tests.payments import factories as pf
from tests.settlement import factories as sf

S = OrderStatus
RETAILER_BPS = 500  # the default contract: 5% on goods
ENTRY, FINAL = 900, 800  # the campaign's tiers: from 1 unit 9.00, from 4 units 8.00
OPENING = 100_000


def _contract(uow: UnitOfWork, partner: Partner) -> None:
    sf.make_contract(uow, partner.public_id, kind=PartyKind.PARTNER, starts_on=date(2026, 11, 1))
    uow.commit()


def _payable(uow: UnitOfWork, party: Partner) -> int:
    book = chart.payable(uow, OwnerKind.PARTNER, party.public_id, "GBP")
    return ledger.balance(uow, book).posted.amount


def _joined(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    shop: Shop,
    campaign: GroupBuy,
    units: int,
    *,
    protection: bool = False,
) -> Order:
    """The customer joins the campaign with `units` (paid, captured at once)."""
    data = service.CheckoutIn(
        partner_id=shop.partner.public_id,
        shipping_address=dict(ADDRESS),
        share_address_with_partner=True,
        items=[Wanted(shop.product.public_id, units, campaign.public_id)],
        device_protection=protection,
    )
    return service.checkout_order(uow, bank, shop.buyer, data).order


def _close(uow: UnitOfWork, bank: BankCoreGateway, clock: FixedClock, order: Order) -> None:
    """The campaign's window ends and it closes, its refunds sent."""
    clock.advance(timedelta(days=3))
    run = closing.close_due(uow, bank)
    assert not run.refunds.errors
    uow.session.refresh(order)


def _delivered(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, order: Order) -> Order:
    service.fulfil(uow, shop.partner_admin, order.public_id)
    service.ship(uow, bank, shop.partner_admin, order.public_id)
    service.deliver(uow, shop.partner_admin, order.public_id)
    uow.session.refresh(order)
    return order


def _closed_and_delivered(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    clock: FixedClock,
    shop: Shop,
    campaign: GroupBuy,
    units: int,
) -> Order:
    """The customer joins with `units`, the campaign closes, the order is delivered."""
    order = _joined(uow, bank, shop, campaign, units)
    _close(uow, bank, clock, order)
    return _delivered(uow, bank, shop, order)


def _return(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, order: Order, units: int) -> Order:
    if order.status is not S.COMPLETED:  # a completed order is taken back directly
        service.request_return(uow, shop.buyer, order.public_id, "not needed")
    return service.confirm_returned(
        uow,
        bank,
        shop.partner_admin,
        order.public_id,
        lines=[service.ShipLine(shop.product.sku, units)],
    )


def _campaign(uow: UnitOfWork, shop: Shop, tiers: tuple[tuple[int, int], ...]) -> GroupBuy:
    made = make_campaign(uow, shop.partner, shop.product, tiers=tiers, min_total_units=1)
    uow.commit()
    return made


def test_units_returned_before_completion_are_refunded_at_the_price_paid_for_them(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contract(uow, shop.partner)
    campaign = _campaign(uow, shop, ((1, ENTRY), (4, FINAL)))
    order = _closed_and_delivered(uow, bank, clock, shop, campaign, 5)
    assert (order.captured_minor, order.refunded_minor) == (5 * ENTRY, 5 * (ENTRY - FINAL))

    order = _return(uow, bank, shop, order, 2)
    assert order.status is S.DELIVERED
    assert order.refunded_minor == 5 * (ENTRY - FINAL) + 2 * FINAL
    assert pf.deposit_figures(uow, shop.account).posted == OPENING - 3 * FINAL

    # A second return within the window: again at the price paid.
    order = _return(uow, bank, shop, order, 1)
    assert order.refunded_minor == 5 * (ENTRY - FINAL) + 3 * FINAL
    assert pf.deposit_figures(uow, shop.account).posted == OPENING - 2 * FINAL
    payment = bank.payment(order.payment_ref or "")
    assert payment.refunded_minor == order.refunded_minor <= order.captured_minor

    clock.advance(timedelta(days=15))
    assert service.complete_orders(uow) == [order.public_id]
    uow.session.refresh(order)
    assert order.commission_minor == bps_of(2 * FINAL, RETAILER_BPS)
    assert _payable(uow, shop.partner) == 2 * FINAL - bps_of(2 * FINAL, RETAILER_BPS)
    assert verify.run(uow.session).ok


def test_units_returned_after_completion_are_refunded_at_the_price_paid_for_them(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contract(uow, shop.partner)
    campaign = _campaign(uow, shop, ((1, ENTRY), (4, FINAL)))
    order = _closed_and_delivered(uow, bank, clock, shop, campaign, 4)
    clock.advance(timedelta(days=15))
    assert service.complete_orders(uow) == [order.public_id]
    uow.session.refresh(order)
    assert order.commission_minor == bps_of(4 * FINAL, RETAILER_BPS)

    order = _return(uow, bank, shop, order, 1)
    assert order.refunded_minor == 4 * (ENTRY - FINAL) + FINAL
    assert pf.deposit_figures(uow, shop.account).posted == OPENING - 3 * FINAL
    # The commission clawed back for the returned unit: it stays on the 3 kept at the final price.
    kept_commission = bps_of(4 * FINAL, RETAILER_BPS) - (
        bps_of(4 * FINAL, RETAILER_BPS) * FINAL // (4 * FINAL)
    )
    assert order.commission_minor == kept_commission
    assert _payable(uow, shop.partner) == 3 * FINAL - kept_commission
    assert verify.run(uow.session).ok


def test_units_returned_before_the_close_get_no_price_difference_from_it(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    """Shipped, delivered and 2 of 5 returned while the campaign is open: refunded at the entry
    price then; the close refunds the difference on the 3 kept only, and a later return of one
    more is refunded at the final price."""
    _contract(uow, shop.partner)
    campaign = _campaign(uow, shop, ((1, ENTRY), (4, FINAL)))
    order = _delivered(uow, bank, shop, _joined(uow, bank, shop, campaign, 5))
    order = _return(uow, bank, shop, order, 2)
    assert order.refunded_minor == 2 * ENTRY
    _close(uow, bank, clock, order)
    assert order.refunded_minor == 2 * ENTRY + 3 * (ENTRY - FINAL)
    assert pf.deposit_figures(uow, shop.account).posted == OPENING - 3 * FINAL

    order = _return(uow, bank, shop, order, 1)
    assert order.refunded_minor == 2 * ENTRY + 3 * (ENTRY - FINAL) + FINAL
    assert pf.deposit_figures(uow, shop.account).posted == OPENING - 2 * FINAL
    clock.advance(timedelta(days=15))
    assert service.complete_orders(uow) == [order.public_id]
    uow.session.refresh(order)
    assert order.commission_minor == bps_of(2 * FINAL, RETAILER_BPS)
    assert verify.run(uow.session).ok


def _fresh_shop(uow: UnitOfWork, insurer: Partner, public_minor: int) -> Shop:
    """A partner of its own per example, so that balances start at zero."""
    partner = f.make_partner(uow, return_window_days=14)
    customer = f.make_customer(uow)
    account = pf.make_account(uow, customer, opening=OPENING * 100)
    admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)
    product = make_product(
        uow, partner, public_minor=public_minor, client_minor=public_minor - 1, stock=20
    )
    other = make_product(uow, partner, public_minor=public_minor, client_minor=public_minor - 1)
    uow.commit()
    made = Shop(
        partner,
        product,
        other,
        customer,
        account,
        f.principal(customer),
        f.principal(admin),
        insurer,
    )
    _contract(uow, partner)
    return made


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entry=st.integers(min_value=100, max_value=60_000),
    cut=st.integers(min_value=1, max_value=99),  # the final tier, as a percentage of the entry's
    units=st.integers(min_value=2, max_value=5),
    data=st.data(),
    protection=st.booleans(),
    after_completion=st.booleans(),
)
def test_a_group_buy_returned_in_part_refunds_what_the_returned_units_cost(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    shop: Shop,
    clock: FixedClock,
    entry: int,
    cut: int,
    units: int,
    data: st.DataObject,
    protection: bool,
    after_completion: bool,
) -> None:
    clock.set(T0)  # each example from the same moment
    final = max(entry * cut // 100, 1)
    party = _fresh_shop(uow, shop.insurer, entry + 1)
    reached = data.draw(st.integers(1, units), label="units of the final tier")
    tiers = ((1, entry), (reached, final)) if reached > 1 else ((1, final),)
    paid_unit = entry if reached > 1 else final
    campaign = _campaign(uow, party, tiers)
    order = _joined(uow, bank, party, campaign, units, protection=protection)
    premium = order.protection_minor
    back = data.draw(st.integers(1, units - 1), label="units returned")
    early = data.draw(st.integers(0, back), label="of them returned before the close")
    if early:  # shipped while the campaign is open, and some returned before it closes
        order = _return(uow, bank, party, _delivered(uow, bank, party, order), early)
        _close(uow, bank, clock, order)
    else:
        _close(uow, bank, clock, order)
        order = _delivered(uow, bank, party, order)
    if after_completion:
        clock.advance(timedelta(days=15))
        assert order.public_id in service.complete_orders(uow)
        uow.session.refresh(order)
    if back > early:
        order = _return(uow, bank, party, order, back - early)

    kept = units - back
    premium_back = crosssell.protection_share(premium, [(paid_unit, units, back)])
    assert order.refunded_minor <= order.captured_minor == units * paid_unit + premium
    assert bank.payment(order.payment_ref or "").refunded_minor == order.refunded_minor
    customer_paid = OPENING * 100 - pf.deposit_figures(uow, party.account).posted
    assert customer_paid == kept * final + premium - premium_back
    assert order.captured_minor - order.refunded_minor == customer_paid
    if not after_completion:
        clock.advance(timedelta(days=15))
        assert order.public_id in service.complete_orders(uow)
        uow.session.refresh(order)
        assert order.commission_minor == bps_of(kept * final, RETAILER_BPS)
    assert verify.run(uow.session).ok
