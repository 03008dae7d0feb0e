"""Group-buy builders for the tests: campaigns with their tiers, and paid campaign orders whose
payments were really authorised and captured through the bank core gateway."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from beyondbank.commerce.models import CampaignStatus, GroupBuy, GroupBuyTier, Partner, Product
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork

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
