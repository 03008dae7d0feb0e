"""What the shop posts to the ledger itself: the bank's commission on an order (a retailer's on
its goods, the insurer's on a protection premium) and a premium passed from the retailer that
collected it to the insurer. The sale and its refunds are the payment gateway's postings."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from beyondbank.commerce.models import Partner
from beyondbank.core.authz import SYSTEM
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind
from beyondbank.settlement import contracts
from beyondbank.settlement.models import PartyKind
from beyondbank.settlement.statements import SHOP_PROTECTION_CATEGORY


def commission_rate(
    uow: UnitOfWork, party: Partner, currency: str, at: datetime, category: str
) -> int:
    """The rate in force (bps) for `category` under the party's commission contract in the
    currency, on `at`'s date in the contract's time zone: the category's override if the version
    has one, else its base share; 0 without a contract."""
    found, _next = contracts.list_contracts(
        uow, SYSTEM, party_id=party.public_id, party_kind=PartyKind.PARTNER, limit=50
    )
    contract = next((c for c in found if c.currency == currency), None)
    if contract is None:
        return 0
    day = at.astimezone(ZoneInfo(contract.timezone)).date()
    version = contracts.version_in_force(uow, contract, day)
    return int(version.category_overrides.get(category, version.base_share_bps))


def commission(
    uow: UnitOfWork,
    *,
    scope: str,
    order_ref: str,
    party_ref: str,
    money: Money,
    category: str,
    clawback: bool,
) -> None:
    """The party's payable → the bank's commission revenue (reversed for a clawback), once per
    order: the key is `{scope}-{kind}:{order}` (`shop` for a retailer's, `shop-protection` for
    the insurer's)."""
    payable = chart.payable(uow, OwnerKind.PARTNER, party_ref, money.currency)
    revenue = chart.commission_revenue(uow, money.currency)
    legs = (
        (ledger.Leg.debit(revenue, money), ledger.Leg.credit(payable, money))
        if clawback
        else (ledger.Leg.debit(payable, money), ledger.Leg.credit(revenue, money))
    )
    kind = chart.Kind.COMMISSION_CLAWBACK if clawback else chart.Kind.COMMISSION
    what = "protection premium of" if category == SHOP_PROTECTION_CATEGORY else "shop order"
    ledger.post(
        uow,
        ledger.Draft(
            key=f"{scope}-{kind.value}:{order_ref}",
            kind=kind.value,
            legs=legs,
            description=f"Commission on {what} {order_ref}" + (" clawed back" if clawback else ""),
            counterparty=party_ref,
            category=category,
            reference=order_ref,
        ),
    )


def premium(
    uow: UnitOfWork,
    *,
    order_ref: str,
    retailer_ref: str,
    insurer_ref: str,
    money: Money,
    back: bool,
) -> None:
    """A premium from the retailer's payable to the insurer's (or back), through premiums in
    transit: two transactions, one per party, since a statement gathers its party's
    transactions by counterparty; posted together, once each per order."""
    retailer = chart.payable(uow, OwnerKind.PARTNER, retailer_ref, money.currency)
    insurer = chart.payable(uow, OwnerKind.PARTNER, insurer_ref, money.currency)
    transit = chart.premiums_in_transit(uow, money.currency)
    kind = chart.Kind.PREMIUM_RETURN if back else chart.Kind.PREMIUM
    sides = (
        ("retailer", retailer_ref, retailer, True),
        ("insurer", insurer_ref, insurer, False),
    )
    for side, party_ref, payable, gives in sides:
        # Passing on: the retailer gives, the insurer receives; handing back the other way.
        out = gives != back
        legs = (
            (ledger.Leg.debit(payable, money), ledger.Leg.credit(transit, money))
            if out
            else (ledger.Leg.debit(transit, money), ledger.Leg.credit(payable, money))
        )
        ledger.post(
            uow,
            ledger.Draft(
                key=f"shop-{kind.value}:{order_ref}:{side}",
                kind=kind.value,
                legs=legs,
                description=f"Device-protection premium of shop order {order_ref}"
                + (" handed back" if back else " passed to the insurer"),
                counterparty=party_ref,
                category=SHOP_PROTECTION_CATEGORY,
                reference=order_ref,
            ),
        )
