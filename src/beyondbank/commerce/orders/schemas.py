"""Request and response shapes for carts, checkout and orders.

Quantities are strict positive integers; amounts are integer minor units (`*_minor`) beside their
currency, except `expected_total`, a decimal string the customer saw ("24.99"), parsed exactly.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from beyondbank.commerce.models import OrderStatus

Quantity = Annotated[int, Field(strict=True, gt=0, le=10_000)]
Ref = Annotated[str, Field(min_length=1, max_length=40)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartItemIn(_In):
    product_id: Ref
    quantity: Quantity
    campaign_id: Ref | None = Field(default=None, description="A group buy for the product")


class CartLineOut(BaseModel):
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_minor: int | None = Field(description="The bank-client price now; null: not for sale")
    public_unit_minor: int | None
    campaign_id: str | None


class CartOut(BaseModel):
    cart_id: str
    partner_id: str
    currency: str
    lines: list[CartLineOut]
    goods_minor: int


class InstalmentOut(BaseModel):
    due: date
    amount_minor: int


class InstalmentPlanOut(BaseModel):
    months: int
    instalments: list[InstalmentOut]


class OffersOut(BaseModel):
    partner_id: str
    currency: str
    goods_minor: int
    instalment_plans: list[InstalmentPlanOut] = Field(description="0% over 3, 6 or 12 months")
    device_protection_minor: int = Field(
        description="The premium for every unit in the cart (0 when protection is not offered)"
    )
    insurer: str | None = Field(
        description="The insurance partner underwriting device protection; null: not offered now"
    )


class AddressIn(_In):
    recipient: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postcode: str = Field(min_length=1, max_length=16)
    country: str = Field(min_length=2, max_length=2, pattern="^[A-Z]{2}$")


class BuyNowIn(_In):
    product_id: Ref
    quantity: Quantity
    campaign_id: Ref | None = None


class CheckoutIn(_In):
    partner_id: Ref
    shipping_address: AddressIn
    share_address_with_partner: bool = Field(
        description="Consent to give the partner this address (and nothing else about you)"
    )
    instalment_months: Literal[3, 6, 12] | None = None
    device_protection: bool = False
    expected_total: str | None = Field(
        default=None,
        max_length=20,
        description='The total shown to the customer, e.g. "24.99": a different total is a 409',
    )
    items: list[BuyNowIn] = Field(default_factory=list, description="Buy now; empty: the cart")


class OrderLineOut(BaseModel):
    sku: str
    quantity: int
    unit_minor: int
    public_unit_minor: int | None = None
    shipped_quantity: int
    returned_quantity: int


class ShipmentOut(BaseModel):
    shipment_id: str
    lines: list[dict[str, Any]]
    amount_minor: int = Field(description="Captured for this shipment")
    carrier: str | None
    tracking: str | None
    shipped_at: datetime


class OrderOut(BaseModel):
    """The customer's view of an order."""

    order_id: str
    partner_id: str
    status: OrderStatus
    currency: str
    goods_minor: int
    saving_minor: int
    protection_minor: int
    protection_policy_ref: str | None
    total_minor: int
    captured_minor: int
    refunded_minor: int
    instalment_months: int | None
    instalment_plan: list[InstalmentOut] | None
    shipping_address: dict[str, Any] | None
    placed_at: datetime
    reserved_until: datetime | None
    return_window_ends_at: datetime | None
    lines: list[OrderLineOut]
    shipments: list[ShipmentOut]


class PartnerOrderOut(BaseModel):
    """The partner's view: the order and the consented shipping address, nothing else about the
    customer."""

    order_id: str
    status: OrderStatus
    currency: str
    goods_minor: int
    protection_minor: int
    total_minor: int
    captured_minor: int
    refunded_minor: int
    shipping_address: dict[str, Any] | None
    placed_at: datetime
    return_window_ends_at: datetime | None
    lines: list[OrderLineOut]
    shipments: list[ShipmentOut]


class ShipLineIn(_In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: Quantity


class ShipmentIn(_In):
    lines: list[ShipLineIn] = Field(default_factory=list, description="Empty: all not yet shipped")
    carrier: str | None = Field(default=None, max_length=100)
    tracking: str | None = Field(default=None, max_length=100)


class ReturnIn(_In):
    reason: str = Field(default="", max_length=1000)


class ReturnedIn(_In):
    lines: list[ShipLineIn] = Field(default_factory=list, description="Empty: everything shipped")
