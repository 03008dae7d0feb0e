"""Shop sales are commissioned per order (at completion), so a partner's statement charges no
commission and no tier bonus on them: the bank never charges the same sale twice."""

from __future__ import annotations

from beyondbank.ledger.chart import Kind
from beyondbank.settlement.statements import (
    SHOP_SALES_CATEGORY,
    Activity,
    Inputs,
    Terms,
    Tier,
    compute,
)

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
