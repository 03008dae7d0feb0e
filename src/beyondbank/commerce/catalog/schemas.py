"""Request and response shapes for the catalog: imports and their rejects, stock, prices, offers.

Prices come in as decimal strings in the product's currency ("12.50"; a third decimal for GBP is
refused, never rounded) and go out as integer minor units with a formatted string beside them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from beyondbank.commerce.catalog.service import Offer
from beyondbank.commerce.models import CatalogImport, CatalogReject, Product, ProductPrice
from beyondbank.core.money import Money

DecimalText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=20,
        pattern=r"^\d+(\.\d+)?$",
        description='A decimal amount in the product\'s currency, e.g. "12.50"',
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RejectOut(BaseModel):
    line: int = Field(description="The feed line the record starts on (the header is line 1)")
    field: str | None
    reason: str
    raw: str

    @classmethod
    def of(cls, reject: CatalogReject) -> RejectOut:
        return cls(line=reject.line, field=reject.field, reason=reject.reason, raw=reject.raw)


class ImportOut(BaseModel):
    id: str
    partner_id: str
    source: str
    format: str
    sha256: str
    status: str
    rows_read: int = Field(description="= created + updated + unchanged + rejected")
    created: int
    updated: int
    unchanged: int
    rejected: int
    started_at: datetime
    finished_at: datetime | None
    requested_by: str

    @classmethod
    def of(cls, job: CatalogImport, partner_public_id: str) -> ImportOut:
        return cls(
            id=job.public_id,
            partner_id=partner_public_id,
            source=job.source,
            format=job.format,
            sha256=job.sha256,
            status=job.status.value,
            rows_read=job.rows_read,
            created=job.created,
            updated=job.updated,
            unchanged=job.unchanged,
            rejected=job.rejected,
            started_at=job.started_at,
            finished_at=job.finished_at,
            requested_by=job.requested_by,
        )


class ImportResultOut(ImportOut):
    first_rejects: list[RejectOut] = Field(description="Up to 20; the rest at GET …/imports/{id}")


class ImportDetailOut(BaseModel):
    catalog_import: ImportOut = Field(alias="import")
    rejects: list[RejectOut]
    next_cursor: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class StockIn(_In):
    stock_on_hand: int = Field(strict=True, ge=0, le=10**9, description="Units on hand")


class StockOut(BaseModel):
    id: str
    sku: str
    stock_on_hand: int
    stock_reserved: int
    available: int = Field(description="on hand less reserved")

    @classmethod
    def of(cls, product: Product) -> StockOut:
        return cls(
            id=product.public_id,
            sku=product.sku,
            stock_on_hand=product.stock_on_hand,
            stock_reserved=product.stock_reserved,
            available=product.stock_on_hand - product.stock_reserved,
        )


class PriceIn(_In):
    public_price: DecimalText
    client_price: DecimalText = Field(description="The bank-client price: below the public one")
    valid_from: datetime | None = Field(default=None, description="Default: now")
    valid_to: datetime | None = Field(default=None, description="Exclusive; default: open-ended")


class PricePeriodOut(BaseModel):
    id: str
    public_minor: int
    client_minor: int
    valid_from: datetime
    valid_to: datetime | None

    @classmethod
    def of(cls, price: ProductPrice) -> PricePeriodOut:
        return cls(
            id=price.public_id,
            public_minor=price.public_minor,
            client_minor=price.client_minor,
            valid_from=price.valid_from,
            valid_to=price.valid_to,
        )


class ProductPricesOut(BaseModel):
    id: str
    sku: str
    currency: str
    prices: list[PricePeriodOut]


class OfferOut(BaseModel):
    """A product on sale now, as the bank's customers see it."""

    id: str
    partner_id: str
    sku: str
    title: str
    description: str
    category: str
    image_url: str | None
    currency: str
    public_price_minor: int = Field(description="What everyone pays")
    client_price_minor: int = Field(description="What the bank's customers pay")
    saving_minor: int
    public_price: str = Field(description="Formatted for display, e.g. £12.50")
    client_price: str
    saving: str
    in_stock: bool = Field(description="Units on hand beyond those reserved")

    @classmethod
    def of(cls, offer: Offer) -> OfferOut:
        p = offer.product

        def fmt(minor: int) -> str:
            return Money(minor, p.currency).format()

        return cls(
            id=p.public_id,
            partner_id=offer.partner_public_id,
            sku=p.sku,
            title=p.title,
            description=p.description,
            category=p.category,
            image_url=p.image_url,
            currency=p.currency,
            public_price_minor=offer.public_minor,
            client_price_minor=offer.client_minor,
            saving_minor=offer.saving_minor,
            public_price=fmt(offer.public_minor),
            client_price=fmt(offer.client_minor),
            saving=fmt(offer.saving_minor),
            in_stock=offer.available > 0,
        )


class CategoryOut(BaseModel):
    name: str
    products: int = Field(description="Products on sale now in it")
