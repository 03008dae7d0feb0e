"""The aggregated purchase order a partner sends its supplier after a successful campaign: the
units every paid order of the campaign adds up to, at the final tier's unit price."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from beyondbank.commerce.groupbuy import service
from beyondbank.commerce.models import (
    CampaignRefund,
    CampaignStatus,
    OrderLine,
    Partner,
    Product,
)
from beyondbank.core.authz import Principal
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.i18n import _
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    group_buy_id: str
    title: str
    partner_id: str
    partner_name: str
    sku: str
    product_title: str
    currency: str
    units: int
    unit_minor: int
    orders: int
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime

    @property
    def total_minor(self) -> int:
        return self.units * self.unit_minor


def purchase_order(uow: UnitOfWork, actor: Principal, public_id: str) -> PurchaseOrder:
    """The campaign's purchase order; 409 unless it closed successfully. The orders are the
    ones its close counted (those with a refund row), so the figures never move afterwards."""
    campaign = service.get_campaign(uow, actor, public_id)
    if campaign.status is not CampaignStatus.SUCCEEDED or campaign.final_unit_minor is None:
        raise InvalidTransition(
            _(
                "Group buy %(public_id)s is "
                "%(status)s: a purchase order "
                "exists only once it has closed successfully.",
                public_id=campaign.public_id,
                status=service.effective_status(campaign, uow.clock.now()).value,
            ),
            extra={"current_status": campaign.status.value},
        )
    counted = (
        select(CampaignRefund.order_id)
        .where(CampaignRefund.campaign_id == campaign.id)
        .scalar_subquery()
    )
    units, orders = uow.session.execute(
        select(
            func.coalesce(func.sum(OrderLine.quantity), 0),
            func.count(func.distinct(OrderLine.order_id)),
        ).where(OrderLine.order_id.in_(counted), OrderLine.product_id == campaign.product_id)
    ).one()
    product = uow.session.get_one(Product, campaign.product_id)
    partner = uow.session.get_one(Partner, campaign.partner_id)
    assert campaign.closed_at is not None  # set with the final price
    return PurchaseOrder(
        group_buy_id=campaign.public_id,
        title=campaign.title,
        partner_id=partner.public_id,
        partner_name=partner.name,
        sku=product.sku,
        product_title=product.title,
        currency=campaign.currency,
        units=int(units),
        unit_minor=campaign.final_unit_minor,
        orders=int(orders),
        opens_at=campaign.opens_at,
        closes_at=campaign.closes_at,
        closed_at=campaign.closed_at,
    )


CSV_COLUMNS = (
    "group_buy_id",
    "title",
    "partner",
    "sku",
    "product",
    "units",
    "currency",
    "unit_price",
    "total",
    "unit_minor",
    "total_minor",
    "orders",
    "window_opens_at",
    "window_closes_at",
    "closed_at",
)


def as_csv(order: PurchaseOrder) -> str:
    """One header line and one line for the product; prices also as decimals for the supplier."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(
        (
            order.group_buy_id,
            _cell(order.title),
            _cell(order.partner_name),
            _cell(order.sku),
            _cell(order.product_title),
            order.units,
            order.currency,
            Money(order.unit_minor, order.currency).to_decimal(),
            Money(order.total_minor, order.currency).to_decimal(),
            order.unit_minor,
            order.total_minor,
            order.orders,
            order.opens_at.isoformat(),
            order.closes_at.isoformat(),
            order.closed_at.isoformat(),
        )
    )
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet would run as a formula is quoted (OWASP CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
