"""What a voucher redemption moves in the ledger, and its correction when it is reversed.

At the counter the merchant gives the discount; the bank then owes the merchant the share it
funds (bank-funded benefits expense → merchant payable), the merchant owes the bank its
commission on the purchase (merchant receivable → commission revenue), and a points
multiplier credits the member's points (points issued → member points). The merchant-funded
share moves no money through the bank: the merchant already gave it at the till.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from beyondbank.alliance.models import Member, Merchant
from beyondbank.benefits import rules
from beyondbank.benefits.models import Benefit, BenefitKind, Redemption
from beyondbank.core.money import POINTS, Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind


def post_redemption(
    uow: UnitOfWork, redemption: Redemption, benefit: Benefit, merchant: Merchant, member: Member
) -> list[ledger.Posted]:
    """Post the redemption's money and points, each once (keys derive from the redemption)."""
    currency = redemption.currency
    posted = []
    legs: list[ledger.Leg] = []
    if redemption.bank_funded_minor:
        amount = Money(redemption.bank_funded_minor, currency)
        legs += [
            ledger.Leg.debit(chart.benefit_expense(uow, currency), amount),
            ledger.Leg.credit(
                chart.payable(uow, OwnerKind.MERCHANT, merchant.public_id, currency), amount
            ),
        ]
    if redemption.commission_minor:
        amount = Money(redemption.commission_minor, currency)
        legs += [
            ledger.Leg.debit(
                chart.receivable(uow, OwnerKind.MERCHANT, merchant.public_id, currency), amount
            ),
            ledger.Leg.credit(chart.commission_revenue(uow, currency), amount),
        ]
    if legs:
        posted.append(
            ledger.post(
                uow,
                ledger.Draft(
                    key=f"voucher:{redemption.public_id}",
                    kind=chart.Kind.VOUCHER,
                    legs=tuple(legs),
                    description=f"Voucher {benefit.title}",
                    details={
                        "merchant_funded_minor": redemption.merchant_funded_minor,
                        "bank_funded_minor": redemption.bank_funded_minor,
                        "commission_minor": redemption.commission_minor,
                        "purchase_amount_minor": redemption.purchase_amount_minor,
                    },
                    **_dimensions(redemption, merchant, member),
                ),
            )
        )
    if benefit.kind is BenefitKind.POINTS_MULTIPLIER:
        points = rules.points_earned(
            redemption.purchase_amount_minor, currency, benefit.points_multiplier
        )
        if points:
            amount = Money(points, POINTS)
            posted.append(
                ledger.post(
                    uow,
                    ledger.Draft(
                        key=f"points:{redemption.public_id}",
                        kind=chart.Kind.POINTS,
                        legs=(
                            ledger.Leg.debit(chart.points_issued(uow), amount),
                            ledger.Leg.credit(chart.member_points(uow, member.public_id), amount),
                        ),
                        description=f"{benefit.points_multiplier}× points: {benefit.title}",
                        **_dimensions(redemption, merchant, member),
                    ),
                )
            )
    return posted


def _dimensions(redemption: Redemption, merchant: Merchant, member: Member) -> _Dimensions:
    return {
        "counterparty": merchant.public_id,
        "member": member.public_id,
        "reference": redemption.public_id,
        "category": merchant.sub_industry,
        "effective_at": redemption.redeemed_at,
    }


class _Dimensions(TypedDict):
    counterparty: str
    member: str
    reference: str
    category: str
    effective_at: datetime


def reverse_redemption(uow: UnitOfWork, redemption: Redemption, reason: str) -> None:
    """Correct everything the redemption posted, once."""
    for prefix, kind in (
        ("voucher", chart.Kind.VOUCHER_REVERSAL),
        ("points", chart.Kind.POINTS_CLAWBACK),
    ):
        original = ledger.transaction_by_key(uow, f"{prefix}:{redemption.public_id}")
        if original is not None:
            ledger.reverse(
                uow,
                original.id,
                key=f"{prefix}-reversal:{redemption.public_id}",
                reason=reason,
                kind=kind,
                effective_at=redemption.reversed_at,
            )
