"""Benefit test data: benefits in any state, request bodies, and members' codes at a given time."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from beyondbank.alliance.models import Circle, Member, Merchant
from beyondbank.benefits.models import (
    Benefit,
    BenefitKind,
    BenefitStatus,
    BenefitTarget,
    Channel,
    LimitPeriod,
    Redemption,
    RedemptionStatus,
    Stacking,
)
from beyondbank.core.ids import new_public_id
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import code_step, member_code
from beyondbank.core.uow import UnitOfWork

# The conftest clock stands at Sunday 2026-11-22 10:00 UTC (10:00 in London).
START = date(2026, 11, 1)
END = date(2026, 12, 31)

# A seed-like supermarket deal: 20% off (capped at £10) where everyone gets 10% off.
PERCENT_TERMS: dict[str, Any] = {
    "kind": BenefitKind.PERCENT_OFF,
    "percent_bps": 2000,
    "max_reward_minor": 1000,
    "regular_price_minor": 1000,
    "public_discount_bps": 1000,
}


def make_benefit(
    uow: UnitOfWork,
    merchant: Merchant,
    *,
    status: BenefitStatus = BenefitStatus.ACTIVE,
    targets: list[Circle] | None = None,
    **over: Any,
) -> Benefit:
    """A benefit stored directly, by default a live 20%-off voucher for the whole of Nov–Dec."""
    now = uow.clock.now()
    fields: dict[str, Any] = {
        "title": "20% off your shop",
        "description": "Members save on every basket.",
        "channels": [Channel.VOUCHER.value, Channel.CARD_LINKED.value],
        "currency": "GBP",
        "valid_from": START,
        "valid_to": END,
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "hour_start": 0,
        "hour_end": 24,
        "timezone": "Europe/London",
        "min_spend_minor": 0,
        "limit_period": LimitPeriod.CAMPAIGN,
        "merchant_share_bps": 10_000,
        "commission_bps": 0,
        "stacking": Stacking.EXCLUSIVE,
        "publicly_available": False,
        **PERCENT_TERMS,
    }
    fields.update(over)
    budget = fields.pop("budget_minor", None)
    quantity = fields.pop("quantity", None)
    benefit = Benefit(
        public_id=new_public_id("ben"),
        merchant_id=merchant.id,
        status=status,
        budget_minor=budget,
        budget_remaining_minor=fields.pop("budget_remaining_minor", budget),
        quantity=quantity,
        quantity_remaining=fields.pop("quantity_remaining", quantity),
        created_at=now,
        updated_at=now,
        **fields,
    )
    benefit.targets = [BenefitTarget(circle_id=c.id) for c in targets or []]
    uow.session.add(benefit)
    uow.session.flush()
    return benefit


def benefit_body(**over: Any) -> dict[str, Any]:
    """A valid request body for POST /benefits: a voucher 20% off, better than the public 10%."""
    body: dict[str, Any] = {
        "title": "20% off your shop",
        "kind": "percent_off",
        "channels": ["voucher"],
        "valid_from": "2026-11-23",
        "valid_to": "2026-12-31",
        "weekdays": [1, 2, 3, 4, 5],
        "hour_start": 9,
        "hour_end": 17,
        "percent_bps": 2000,
        "max_reward_minor": 1000,
        "member_limit": 1,
        "limit_period": "day",
        "budget_minor": 50_000,
        "regular_price_minor": 1000,
        "public_discount_bps": 1000,
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def code_at(settings: Settings, member: Member, at: datetime) -> str:
    """The code the member's phone shows at `at`."""
    return member_code(settings.secret_key.get_secret_value(), member.member_number, code_step(at))


def make_redemption(
    uow: UnitOfWork, benefit: Benefit, member: Member, *, reward_minor: int = 500, **over: Any
) -> Redemption:
    """A redemption stored directly (the counters are not touched: for reads and reversals)."""
    now = uow.clock.now()
    redemption = Redemption(
        public_id=new_public_id("red"),
        benefit_id=benefit.id,
        member_id=member.id,
        member_number=member.member_number,
        merchant_id=benefit.merchant_id,
        status=over.pop("status", RedemptionStatus.REDEEMED),
        currency=benefit.currency,
        purchase_amount_minor=over.pop("purchase_amount_minor", 2500),
        reward_minor=reward_minor,
        merchant_funded_minor=reward_minor,
        bank_funded_minor=0,
        commission_minor=0,
        period_key=over.pop("period_key", "campaign"),
        code_step=over.pop("code_step", code_step(now)),
        redeemed_at=now,
        **over,
    )
    uow.session.add(redemption)
    uow.session.flush()
    return redemption
