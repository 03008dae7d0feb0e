"""A period's statement, computed from plain figures: no database, so every formula is testable.

Signs: every amount on the statement reads from the party's side: positive is what the bank owes
the party, negative what the party owes the bank. The formulas, and who gets each rounding
remainder, are documented in docs/settlement.md; in short:

* **Activity**: the party's ledger transactions the period settles (its own, and any posted late
  into an earlier period after that closed), by kind: what each did to the party's payable
  (credits +) and receivable (debits −).
* **Commission** per category on net sales (sales − returns) at the category's rate (an override,
  or the base share): `floor(net × bps / 10000)`; the party keeps the fraction. Returns above
  sales give a refund, `−floor(|net| × bps / 10000)`; the bank keeps that fraction.
* **Tier bonus**: marginal bands over the period's net sales, like tax brackets: each band's slice
  × its bonus bps, rounded down per band (the party keeps the fractions).
* **New customers**: members whose first-ever sale with the party falls in the period × the fee.
* **Minimum fee**: the period's share of the monthly minimum; if commission + bonus + new-customer
  fees (a net refund counting as zero) fall short of it, a top-up makes up the difference.
* **Net** = activity − charges.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from beyondbank.core.money import split_bps
from beyondbank.ledger.chart import Kind

FORMAT = 1
SALES_KINDS = frozenset({Kind.SALE.value, Kind.RETURN.value, "sale.reversal", "return.reversal"})
REWARD_KINDS = frozenset({Kind.REWARD.value, Kind.REWARD_CLAWBACK.value})
UNCATEGORISED = ""  # the category of sales with none: charged at the base share
# Sales whose commission is posted per sale by the area that made it (a `commission` transaction
# of its own, on the statement's activity): the partner shop's orders accrue theirs when each
# order completes. Such sales are listed with a rate of 0 and kept out of the tier bonus base, so
# that the bank never charges the same sale twice.
SHOP_SALES_CATEGORY = "shop.order"
COMMISSIONED_PER_SALE = frozenset({SHOP_SALES_CATEGORY})
# The device-protection premiums an insurer underwrites: passed to it per order (`premium`), with
# the bank's commission on each (`commission`) under the insurer's contract, never as sales.
SHOP_PROTECTION_CATEGORY = "shop.protection"

KIND_LABELS = {
    Kind.SALE.value: "Sales",
    Kind.RETURN.value: "Returns",
    "sale.reversal": "Sales corrected",
    "return.reversal": "Returns corrected",
    Kind.REWARD.value: "Merchant-funded rewards",
    Kind.REWARD_CLAWBACK.value: "Reward clawbacks",
    Kind.VOUCHER.value: "Vouchers redeemed",
    Kind.VOUCHER_REVERSAL.value: "Vouchers reversed",
    Kind.COMMISSION.value: "Commission on rewarded purchases",
    Kind.COMMISSION_CLAWBACK.value: "Commission clawed back",
    Kind.PREMIUM.value: "Device-protection premiums",
    Kind.PREMIUM_RETURN.value: "Device-protection premiums handed back",
    Kind.BUDGET_TOPUP.value: "Benefit budget top-ups",
    Kind.POOL_CONTRIBUTION.value: "Co-funding contributions",
    Kind.POOL_DRAW.value: "Co-funding draws",
    Kind.ADJUSTMENT.value: "Adjustments",
}


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    from_minor: int  # monthly net sales from which the bonus applies
    bonus_bps: int


@dataclass(frozen=True, slots=True)
class Terms:
    """The contract version in force, with its monthly amounts already shared to the period."""

    version_id: str
    version: int
    effective_from: str  # ISO date
    base_share_bps: int
    category_overrides: Mapping[str, int]
    tiers: tuple[Tier, ...]  # thresholds as written (monthly)
    tier_thresholds: tuple[int, ...]  # the period's share of each threshold
    new_customer_fee_minor: int
    minimum_monthly_fee_minor: int
    minimum_fee_minor: int  # the period's share of the monthly minimum


@dataclass(frozen=True, slots=True)
class Activity:
    """The party's ledger transactions of one kind and category in the period, summed."""

    kind: str
    category: str | None
    count: int
    payable_minor: int  # credits to the party's payable, net (+: the bank owes more)
    receivable_minor: int  # debits to the party's receivable, net (+: the party owes more)
    merchant_funded_minor: int = 0  # `details.merchant_funded_minor`, for rewards

    @property
    def effect_minor(self) -> int:
        return self.payable_minor - self.receivable_minor


@dataclass(frozen=True, slots=True)
class PoolFigures:
    pool_id: str
    name: str
    opening_minor: int
    party_contributions_minor: int
    bank_contributions_minor: int
    draws_minor: int
    closing_minor: int


@dataclass(frozen=True, slots=True)
class Inputs:
    currency: str
    terms: Terms
    activity: tuple[Activity, ...]
    new_customers: int
    pools: tuple[PoolFigures, ...] = ()
    late_count: int = 0  # transactions effective in an earlier, closed period, settled now
    late_minor: int = 0


# -- splits: each returns parts that add up to the whole --------------------------------------


def commission_split(net_minor: int, bps: int) -> tuple[int, int]:
    """(the bank's commission, the party's part) of a category's net sales; they sum to the net.

    Positive net: the commission is rounded down (the party keeps the fraction). Negative net
    (returns above sales): the refund is rounded down in size (the bank keeps the fraction)."""
    if net_minor >= 0:
        return split_bps(net_minor, bps)
    refund, kept = split_bps(-net_minor, bps)
    return -refund, -kept


@dataclass(frozen=True, slots=True)
class Band:
    from_minor: int
    to_minor: int | None  # exclusive; None: no upper bound
    bonus_bps: int
    slice_minor: int  # the part of net sales within the band
    bonus_minor: int  # floor(slice × bps / 10000)
    kept_minor: int  # slice − bonus: what the party keeps of the slice


def tier_bands(net_sales_minor: int, thresholds: Sequence[int], bps: Sequence[int]) -> list[Band]:
    """Marginal bands: band i covers net sales from threshold i up to threshold i+1 and earns its
    own rate on that slice. Net sales at or below zero earn no bonus."""
    bands = []
    base = max(net_sales_minor, 0)
    for i, (lower, rate) in enumerate(zip(thresholds, bps, strict=True)):
        upper = thresholds[i + 1] if i + 1 < len(thresholds) else None
        top = base if upper is None else min(base, upper)
        slice_minor = max(top - lower, 0)
        bonus, kept = split_bps(slice_minor, rate)
        bands.append(Band(lower, upper, rate, slice_minor, bonus, kept))
    return bands


# -- the computation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Computed:
    """The statement's content (canonical JSON-ready) and the figures the settlement posts."""

    content: dict[str, Any]
    commission_minor: int  # base commission + tier bonus (signed): to commission revenue
    fees_minor: int  # new-customer fees + minimum-fee top-up: to fee revenue
    payable_minor: int  # the period's activity on the payable
    receivable_minor: int  # the period's activity on the receivable, before the charges
    net_minor: int
    legs: dict[str, int] = field(default_factory=dict)


def compute(inputs: Inputs) -> Computed:
    terms = inputs.terms

    # Activity by kind, in kind order.
    by_kind: dict[str, list[Activity]] = defaultdict(list)
    for item in inputs.activity:
        by_kind[item.kind].append(item)
    activity_lines = [
        {
            "kind": kind,
            "label": KIND_LABELS.get(kind, kind),
            "count": sum(a.count for a in items),
            "payable_minor": sum(a.payable_minor for a in items),
            "receivable_minor": sum(a.receivable_minor for a in items),
            "amount_minor": sum(a.effect_minor for a in items),
        }
        for kind, items in sorted(by_kind.items())
    ]
    payable = sum(a.payable_minor for a in inputs.activity)
    receivable = sum(a.receivable_minor for a in inputs.activity)

    # Sales, returns and commission per category.
    sales: dict[str, int] = defaultdict(int)
    returns: dict[str, int] = defaultdict(int)
    for item in inputs.activity:
        if item.kind in SALES_KINDS:
            category = item.category or UNCATEGORISED
            if item.kind == Kind.SALE.value:
                sales[category] += item.payable_minor
            else:
                returns[category] += -item.payable_minor
    category_lines: list[dict[str, Any]] = []
    for category in sorted(set(sales) | set(returns)):
        net = sales[category] - returns[category]
        if category in COMMISSIONED_PER_SALE:
            rate = 0
        else:
            rate = int(terms.category_overrides.get(category, terms.base_share_bps))
        commission, kept = commission_split(net, rate)
        category_lines.append(
            {
                "category": category,
                "sales_minor": sales[category],
                "returns_minor": returns[category],
                "net_minor": net,
                "rate_bps": rate,
                "commission_minor": commission,
                "party_keeps_minor": kept,
            }
        )
    gross_sales = sum(sales.values())
    total_returns = sum(returns.values())
    net_sales = gross_sales - total_returns
    commission = sum(line["commission_minor"] for line in category_lines)
    bonus_base = net_sales - sum(
        line["net_minor"] for line in category_lines if line["category"] in COMMISSIONED_PER_SALE
    )

    bands = tier_bands(bonus_base, terms.tier_thresholds, [t.bonus_bps for t in terms.tiers])
    bonus = sum(b.bonus_minor for b in bands)
    new_customer_fees = inputs.new_customers * terms.new_customer_fee_minor
    earned = commission + bonus + new_customer_fees
    # A refund of commission counts as nothing earned: it is always paid back in full.
    top_up = max(0, terms.minimum_fee_minor - max(earned, 0))
    charges = earned + top_up
    net = payable - receivable - charges

    rewards = [a for a in inputs.activity if a.kind in REWARD_KINDS]
    granted = sum(a.merchant_funded_minor for a in rewards if a.kind == Kind.REWARD.value)
    clawed = sum(a.merchant_funded_minor for a in rewards if a.kind != Kind.REWARD.value)

    content: dict[str, Any] = {
        "format": FORMAT,
        "currency": inputs.currency,
        "terms": {
            "version_id": terms.version_id,
            "version": terms.version,
            "effective_from": terms.effective_from,
            "base_share_bps": terms.base_share_bps,
            "category_overrides": {k: int(v) for k, v in sorted(terms.category_overrides.items())},
            "sales_tiers": [
                {"from_minor": t.from_minor, "bonus_bps": t.bonus_bps} for t in terms.tiers
            ],
            "new_customer_fee_minor": terms.new_customer_fee_minor,
            "minimum_monthly_fee_minor": terms.minimum_monthly_fee_minor,
        },
        "activity": activity_lines,
        "late": {"count": inputs.late_count, "amount_minor": inputs.late_minor},
        "categories": category_lines,
        "tiers": [
            {
                "from_minor": b.from_minor,
                "to_minor": b.to_minor,
                "bonus_bps": b.bonus_bps,
                "slice_minor": b.slice_minor,
                "bonus_minor": b.bonus_minor,
            }
            for b in bands
        ],
        "new_customers": {
            "count": inputs.new_customers,
            "fee_minor": terms.new_customer_fee_minor,
            "amount_minor": new_customer_fees,
        },
        "minimum_fee": {
            "monthly_minor": terms.minimum_monthly_fee_minor,
            "period_minor": terms.minimum_fee_minor,
            "earned_minor": earned,
            "top_up_minor": top_up,
        },
        "merchant_funded_rewards": {
            "granted_minor": granted,
            "clawed_back_minor": clawed,
            "owed_minor": granted - clawed,
        },
        "pools": [
            {
                "pool_id": p.pool_id,
                "name": p.name,
                "opening_minor": p.opening_minor,
                "party_contributions_minor": p.party_contributions_minor,
                "bank_contributions_minor": p.bank_contributions_minor,
                "draws_minor": p.draws_minor,
                "closing_minor": p.closing_minor,
            }
            for p in sorted(inputs.pools, key=lambda p: p.pool_id)
        ],
        "totals": {
            "sales_minor": gross_sales,
            "returns_minor": total_returns,
            "net_sales_minor": net_sales,
            "activity_minor": payable - receivable,
            "commission_minor": commission,
            "bonus_minor": bonus,
            "new_customer_fees_minor": new_customer_fees,
            "minimum_fee_top_up_minor": top_up,
            "charges_minor": charges,
            "net_minor": net,
            "direction": direction(net),
        },
    }
    return Computed(
        content=content,
        commission_minor=commission + bonus,
        fees_minor=new_customer_fees + top_up,
        payable_minor=payable,
        receivable_minor=receivable,
        net_minor=net,
        legs=settlement_legs(payable, receivable, commission + bonus, new_customer_fees + top_up),
    )


def direction(net_minor: int) -> str:
    if net_minor > 0:
        return "payable"  # the bank pays the party
    if net_minor < 0:
        return "receivable"  # the party pays the bank
    return "nil"


def settlement_legs(payable: int, receivable: int, commission: int, fees: int) -> dict[str, int]:
    """The settlement posting as signed debits (+) and credits (−) per account role, summing to 0.

    The charges are debited to the receivable against revenue. Then the period's result is put in
    one place: a net the bank owes stays on the payable (the receivable's period movements are
    moved onto it); a net the party owes sits on the receivable (the payable's are moved onto it)."""
    charges = commission + fees
    owed = receivable + charges
    net = payable - owed
    if net >= 0:
        moved = owed  # receivable → payable
        legs = {"payable": moved, "receivable": charges - moved}
    else:
        moved = payable  # payable → receivable
        legs = {"payable": moved, "receivable": charges - moved}
    legs["commission_revenue"] = -commission
    legs["fee_revenue"] = -fees
    assert sum(legs.values()) == 0
    return {role: amount for role, amount in legs.items() if amount != 0}


def canonical(content: Mapping[str, Any]) -> str:
    """The one serialisation of a statement: sorted keys, no whitespace, UTF-8 text."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
