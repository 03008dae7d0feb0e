"""Shop sales are commissioned per order (at completion), so a partner's statement charges no
commission and no tier bonus on them: the bank never charges the same sale twice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from beyondbank.commerce.orders import service
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.chart import Kind
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.settlement import periods
from beyondbank.settlement.models import PartyKind
from beyondbank.settlement.statements import (
    SHOP_SALES_CATEGORY,
    Activity,
    Inputs,
    Terms,
    Tier,
    compute,
)
from tests.commerce.orders.conftest import Shop, checkout_in
from tests.settlement import factories as sf

TERMS = Terms(
    version_id="ver_1",
    version=1,
    effective_from="2026-11-01",
    base_share_bps=500,
    category_overrides={},
    tiers=(Tier(0, 0), Tier(10_000, 100)),
    tier_thresholds=(0, 10_000),
    new_customer_fee_minor=0,
    minimum_monthly_fee_minor=0,
    minimum_fee_minor=0,
)


def test_a_shop_order_is_charged_once_by_its_own_commission() -> None:
    content = compute(
        Inputs(
            currency="GBP",
            terms=TERMS,
            activity=(
                Activity(Kind.SALE.value, SHOP_SALES_CATEGORY, 1, 28_000, 0),
                # The order's commission, posted at completion: the partner's payable debited.
                Activity(Kind.COMMISSION.value, SHOP_SALES_CATEGORY, 1, -1_400, 0),
                Activity(Kind.SALE.value, None, 1, 20_000, 0),  # an ordinary sale
            ),
            new_customers=0,
        )
    ).content
    lines = {line["category"]: line for line in content["categories"]}
    assert (
        lines[SHOP_SALES_CATEGORY]["rate_bps"],
        lines[SHOP_SALES_CATEGORY]["commission_minor"],
    ) == (
        0,
        0,
    )
    assert lines[""]["commission_minor"] == 1_000  # 5% of 20,000
    # The bonus counts the ordinary sale only: 1% of (20,000 − 10,000).
    assert content["totals"]["bonus_minor"] == 100
    # The partner gets its sales less the order's commission and the statement's charges.
    assert content["totals"]["net_minor"] == 28_000 - 1_400 + 20_000 - 1_000 - 100


def test_through_the_ledger_a_completed_order_is_commissioned_once(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    """Checkout, ship, deliver, complete; then close the partner's November and December: the
    sale is settled at a rate of 0, the order's own commission is charged once."""
    contract = sf.make_contract(
        uow, shop.partner.public_id, kind=PartyKind.PARTNER, starts_on=date(2026, 11, 1)
    )
    uow.commit()
    order = service.checkout_order(
        uow, bank, shop.buyer, checkout_in(shop, (shop.product, 3), (shop.other, 1))
    ).order
    service.fulfil(uow, shop.partner_admin, order.public_id)
    service.ship(uow, bank, shop.partner_admin, order.public_id)
    service.deliver(uow, shop.partner_admin, order.public_id)
    clock.advance(timedelta(days=15))
    assert service.complete_orders(uow) == [order.public_id]

    clock.set(datetime(2027, 1, 2, 12, 0, tzinfo=UTC))
    november, december = sf.open_periods(uow, contract)[:2]
    statements = [
        json.loads(periods.close(uow, SYSTEM, p.public_id).statement.content)
        for p in (november, december)
    ]
    charged = sum(s["totals"]["commission_minor"] for s in statements)
    assert charged == 0  # no commission on the shop's sales themselves
    [shop_line] = statements[0]["categories"]
    assert (shop_line["category"], shop_line["net_minor"], shop_line["rate_bps"]) == (
        SHOP_SALES_CATEGORY,
        28_000,
        0,
    )
    activity = {line["kind"]: line["amount_minor"] for s in statements for line in s["activity"]}
    assert activity == {"sale": 28_000, "commission": -1_400}  # 5%, once
    assert sum(s["totals"]["net_minor"] for s in statements) == 28_000 - 1_400
