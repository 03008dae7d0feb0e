"""Request and response shapes for group buys: campaigns, live progress, closing, the purchase
order. Prices are integer minor units (`*_minor`); a tier may instead give `unit_price` as a
decimal string, parsed exactly in the product's currency (a third decimal for GBP is refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from beyondbank.commerce.groupbuy import closing, service
from beyondbank.commerce.groupbuy.purchase_order import PurchaseOrder
from beyondbank.commerce.groupbuy.tiers import Tier
from beyondbank.commerce.models import CampaignStatus

MAX_UNITS = 1_000_000
Units = Annotated[int, Field(strict=True, ge=1, le=MAX_UNITS)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TierIn(_In):
    min_units: Units = Field(description="From this many units in total; the first tier is 1")
    unit_minor: int | None = Field(
        default=None, strict=True, description="The unit price in minor units, e.g. 899"
    )
    unit_price: str | None = Field(
        default=None,
        pattern=r"^\d{1,10}(\.\d+)?$",
        description='Or the unit price as a decimal string, e.g. "8.99"',
    )


class CampaignIn(_In):
    product_id: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    opens_at: AwareDatetime | None = Field(default=None, description="Leave out to open now")
    closes_at: AwareDatetime
    tiers: list[TierIn] = Field(min_length=1, max_length=service.MAX_TIERS)
    min_total_units: Units = Field(description="Below this many units at the close, it fails")
    per_customer_limit: Units
    max_total_units: Units | None = Field(default=None, description="A cap on all units")

    def to_service(self) -> service.CampaignIn:
        return service.CampaignIn(
            product_id=self.product_id,
            title=self.title,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            tiers=[service.TierIn(t.min_units, t.unit_minor, t.unit_price) for t in self.tiers],
            min_total_units=self.min_total_units,
            per_customer_limit=self.per_customer_limit,
            max_total_units=self.max_total_units,
        )


class TierOut(BaseModel):
    min_units: int
    unit_minor: int

    @classmethod
    def of(cls, tier: Tier | None) -> TierOut | None:
        return None if tier is None else cls(min_units=tier.min_units, unit_minor=tier.unit_minor)


class ProductRef(BaseModel):
    id: str
    sku: str
    title: str


class GroupBuyOut(BaseModel):
    """A campaign and its live progress."""

    id: str
    title: str
    status: str = Field(
        description="scheduled, open, closing (window over, not closed yet), succeeded, "
        "failed or cancelled"
    )
    product: ProductRef
    currency: str
    opens_at: datetime
    closes_at: datetime
    seconds_left: int
    tiers: list[TierOut]
    entry_unit_minor: int = Field(description="What a customer pays to join")
    units: int = Field(description="Units joined so far")
    min_total_units: int
    minimum_met: bool
    max_total_units: int | None
    units_left: int | None = Field(description="Before the cap; null without one")
    tier_reached: TierOut | None
    next_tier: TierOut | None
    units_to_next_tier: int | None
    per_customer_limit: int
    your_units: int | None = Field(description="The calling customer's units; null otherwise")
    your_units_left: int | None
    final_unit_minor: int | None
    closed_at: datetime | None

    @classmethod
    def of(cls, p: service.Progress) -> GroupBuyOut:
        c = p.campaign
        return cls(
            id=c.public_id,
            title=c.title,
            status=p.status,
            product=ProductRef(id=p.product_id, sku=p.product_sku, title=p.product_title),
            currency=c.currency,
            opens_at=c.opens_at,
            closes_at=c.closes_at,
            seconds_left=p.seconds_left,
            tiers=[TierOut(min_units=t.min_units, unit_minor=t.unit_minor) for t in p.tiers],
            entry_unit_minor=p.entry.unit_minor,
            units=p.units,
            min_total_units=c.min_total_units,
            minimum_met=p.minimum_met,
            max_total_units=c.max_total_units,
            units_left=None if c.max_total_units is None else max(c.max_total_units - p.units, 0),
            tier_reached=TierOut.of(p.reached),
            next_tier=TierOut.of(p.next),
            units_to_next_tier=p.units_to_next,
            per_customer_limit=c.per_customer_limit,
            your_units=p.your_units,
            your_units_left=p.your_units_left,
            final_unit_minor=c.final_unit_minor,
            closed_at=c.closed_at,
        )


class SettledOut(BaseModel):
    status: CampaignStatus
    units: int
    orders: int
    final_unit_minor: int | None
    refund_minor: int = Field(description="The total the close refunds")
    newly: bool = Field(description="False: it had been closed before; nothing was settled again")


class RefundRunOut(BaseModel):
    refunded: int = Field(description="Refunds the bank made in this call")
    refunded_minor: int
    failed: int = Field(description="Refunds left pending after a gateway error: retried later")


class CloseOut(BaseModel):
    group_buy: GroupBuyOut
    settlement: SettledOut
    refunds: RefundRunOut

    @classmethod
    def of(
        cls, progress: service.Progress, settled: closing.Settled, run: closing.RefundRun
    ) -> CloseOut:
        return cls(
            group_buy=GroupBuyOut.of(progress),
            settlement=SettledOut(
                status=settled.status,
                units=settled.units,
                orders=settled.orders,
                final_unit_minor=settled.final_unit_minor,
                refund_minor=settled.refund_minor,
                newly=settled.newly,
            ),
            refunds=RefundRunOut(
                refunded=run.refunded, refunded_minor=run.refunded_minor, failed=run.failed
            ),
        )


class PurchaseOrderOut(BaseModel):
    group_buy_id: str
    title: str
    partner_id: str
    partner_name: str
    sku: str
    product_title: str
    currency: str
    units: int
    unit_minor: int
    total_minor: int
    orders: int
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime

    @classmethod
    def of(cls, po: PurchaseOrder) -> PurchaseOrderOut:
        return cls(
            group_buy_id=po.group_buy_id,
            title=po.title,
            partner_id=po.partner_id,
            partner_name=po.partner_name,
            sku=po.sku,
            product_title=po.product_title,
            currency=po.currency,
            units=po.units,
            unit_minor=po.unit_minor,
            total_minor=po.total_minor,
            orders=po.orders,
            opens_at=po.opens_at,
            closes_at=po.closes_at,
            closed_at=po.closed_at,
        )
