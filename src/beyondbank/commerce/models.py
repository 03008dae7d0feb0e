"""Partner shop tables: partners, catalog and prices, group buys, carts, orders, webhooks, support.

What the database itself guarantees here, so that no code path can break it under concurrency:
stock never goes below what is reserved (`0 <= reserved <= on_hand`); a bank-client price is
below the public price of the same period; a customer's units in a group buy stay within the
campaign's limit; an order's captured and refunded amounts stay within what was paid; one NPS
answer per order; one webhook delivery per event and endpoint.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from beyondbank.core.db import Base, IdMixin, str_enum


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class PartnerKind(StrEnum):
    RETAILER = "retailer"  # sells its catalog in the bank's app
    INSURER = "insurer"  # underwrites the device protection the bank sells at checkout


# One insurer underwrites the bank's device protection in a currency at a time, so every policy
# has exactly one insurer to pass its premium to; the database keeps it so.
_ACTIVE_INSURER = "kind = 'insurer' AND status = 'active'"


class Partner(IdMixin, Base):
    """A partner organisation the bank settles with monthly: an e-commerce partner selling in
    the bank's app, or the insurer underwriting the device protection sold at its checkout."""

    __tablename__ = "partners"
    __table_args__ = (
        Index(
            "uq_partners_active_insurer_currency",
            "currency",
            unique=True,
            sqlite_where=text(_ACTIVE_INSURER),
            postgresql_where=text(_ACTIVE_INSURER),
        ),
    )

    kind: Mapped[PartnerKind] = mapped_column(
        str_enum(PartnerKind), default=PartnerKind.RETAILER, server_default="retailer"
    )
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[PartnerStatus] = mapped_column(str_enum(PartnerStatus))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    settlement_iban: Mapped[str | None] = mapped_column(String(34))
    settlement_bic: Mapped[str | None] = mapped_column(String(11))
    created_at: Mapped[datetime]
    # How long after delivery a customer may still return an order; commission accrues after it.
    return_window_days: Mapped[int] = mapped_column(default=14)
    # Support response-time targets, in hours.
    first_response_hours: Mapped[int] = mapped_column(default=24)
    resolution_hours: Mapped[int] = mapped_column(default=120)


# -- catalog -------------------------------------------------------------------------------


class ProductStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"  # no longer in the partner's feed or taken off sale


class Product(IdMixin, Base):
    """One of a partner's products, as its catalog feed describes it, with its stock."""

    __tablename__ = "shop_products"
    __table_args__ = (
        UniqueConstraint("partner_id", "sku", name="uq_shop_products_partner_sku"),
        # Stock is reserved by conditional UPDATE (`WHERE on_hand - reserved >= n`); these make
        # any path that forgets the condition fail instead of overselling.
        CheckConstraint("stock_on_hand >= 0", name="stock_non_negative"),
        CheckConstraint(
            "stock_reserved >= 0 AND stock_reserved <= stock_on_hand", name="reserved_within_stock"
        ),
        Index("ix_shop_products_partner_category", "partner_id", "category"),
    )

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    sku: Mapped[str] = mapped_column(String(64))  # the partner's stock code
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    image_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[ProductStatus] = mapped_column(str_enum(ProductStatus))
    stock_on_hand: Mapped[int] = mapped_column(default=0)
    stock_reserved: Mapped[int] = mapped_column(default=0)  # held by unpaid or unshipped orders
    # sha256 of the feed row as last imported: an identical row changes nothing.
    feed_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProductPrice(IdMixin, Base):
    """A product's public and bank-client price for a period (`valid_to` exclusive, open if null)."""

    __tablename__ = "shop_product_prices"
    __table_args__ = (
        UniqueConstraint("product_id", "valid_from", name="uq_shop_product_prices_from"),
        CheckConstraint("client_minor > 0", name="client_positive"),
        CheckConstraint("client_minor < public_minor", name="client_below_public"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period_ordered"),
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("shop_products.id"), index=True)
    public_minor: Mapped[int]
    client_minor: Mapped[int]  # what the bank's customers pay
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ImportStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CatalogImport(IdMixin, Base):
    """One catalog feed import and its counts: read = created + updated + unchanged + rejected."""

    __tablename__ = "shop_catalog_imports"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    source: Mapped[str] = mapped_column(String(300))  # file name or "api"
    format: Mapped[str] = mapped_column(String(8))  # csv | json
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus))
    rows_read: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    requested_by: Mapped[str] = mapped_column(String(40))


class CatalogReject(Base):
    """A feed row the import refused: its line and the reason, kept for the partner to fix."""

    __tablename__ = "shop_catalog_rejects"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("shop_catalog_imports.id"), index=True)
    line: Mapped[int]
    field: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


# -- group buying ----------------------------------------------------------------------------


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"  # before its window opens
    OPEN = "open"
    SUCCEEDED = "succeeded"  # closed at or above its minimum: orders repriced to the final tier
    FAILED = "failed"  # closed below its minimum: every order refunded in full
    CANCELLED = "cancelled"  # withdrawn before it closed: refunded in full


class GroupBuy(IdMixin, Base):
    """A group-buy campaign for one product: the more units customers buy, the lower the price."""

    __tablename__ = "shop_group_buys"
    __table_args__ = (
        CheckConstraint("closes_at > opens_at", name="window_ordered"),
        CheckConstraint("min_total_units > 0", name="minimum_positive"),
        CheckConstraint("per_customer_limit > 0", name="limit_positive"),
        CheckConstraint("units_joined >= 0", name="units_non_negative"),
        CheckConstraint("max_total_units IS NULL OR units_joined <= max_total_units", name="cap"),
        Index("ix_shop_group_buys_status_closes", "status", "closes_at"),
    )

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("shop_products.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    min_total_units: Mapped[int]  # below this at the close, the campaign fails
    max_total_units: Mapped[int | None]  # what the partner can source; null: no cap
    per_customer_limit: Mapped[int]
    units_joined: Mapped[int] = mapped_column(default=0)  # paid units, by conditional UPDATE
    status: Mapped[CampaignStatus] = mapped_column(str_enum(CampaignStatus))
    final_unit_minor: Mapped[int | None]  # the tier price the close settled on
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class GroupBuyTier(Base):
    """From `min_units` units in total, every unit costs `unit_minor`. The lowest tier is the
    entry price customers pay when they join."""

    __tablename__ = "shop_group_buy_tiers"
    __table_args__ = (
        UniqueConstraint("campaign_id", "min_units", name="uq_shop_group_buy_tiers_units"),
        CheckConstraint("min_units > 0", name="units_positive"),
        CheckConstraint("unit_minor > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("shop_group_buys.id"))
    min_units: Mapped[int]
    unit_minor: Mapped[int]


class GroupBuyParticipant(Base):
    """How many units a customer holds in a campaign; the database keeps it within the limit."""

    __tablename__ = "shop_group_buy_participants"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_shop_group_buy_participants"),
        CheckConstraint("units >= 0 AND units <= unit_limit", name="units_within_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("shop_group_buys.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    units: Mapped[int]
    unit_limit: Mapped[int]  # the campaign's per-customer limit, copied so a CHECK can see it
    joined_at: Mapped[datetime]


class CampaignRefund(Base):
    """What closing a campaign refunds on one order. Unique per (campaign, order): closing twice
    finds the row and refunds once; `done_at` is set when the gateway has refunded."""

    __tablename__ = "shop_group_buy_refunds"
    __table_args__ = (
        UniqueConstraint("campaign_id", "order_id", name="uq_shop_group_buy_refunds_order"),
        CheckConstraint("amount_minor >= 0", name="amount_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("shop_group_buys.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"))
    amount_minor: Mapped[int]
    reason: Mapped[str] = mapped_column(String(32))  # tier_difference | campaign_failed | …
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


# -- carts, reservations, orders ----------------------------------------------------------------


class Cart(IdMixin, Base):
    """A customer's cart with one partner. Items are only priced and reserved at checkout."""

    __tablename__ = "shop_carts"
    __table_args__ = (Index("ix_shop_carts_customer_partner", "customer_id", "partner_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    checked_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CartItem(Base):
    __tablename__ = "shop_cart_items"
    __table_args__ = (
        UniqueConstraint("cart_id", "product_id", name="uq_shop_cart_items_product"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("shop_carts.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("shop_products.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("shop_group_buys.id"))
    quantity: Mapped[int]
    added_at: Mapped[datetime]


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"  # the return window has passed: commission accrues
    CANCELLED = "cancelled"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    REFUNDED = "refunded"


class Order(IdMixin, Base):
    """A customer's order with one partner, paid through the bank's payment gateway."""

    __tablename__ = "shop_orders"
    __table_args__ = (
        CheckConstraint("total_minor > 0", name="total_positive"),
        CheckConstraint(
            "captured_minor >= 0 AND captured_minor <= total_minor", name="captured_within"
        ),
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= captured_minor", name="refunded_within"
        ),
        CheckConstraint(
            "instalment_months IS NULL OR instalment_months IN (3, 6, 12)", name="instalments"
        ),
        CheckConstraint("protection_minor >= 0", name="protection_non_negative"),
        Index("ix_shop_orders_customer_placed", "customer_id", "placed_at"),
        Index("ix_shop_orders_partner_status", "partner_id", "status"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("shop_group_buys.id"), index=True)
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus))
    currency: Mapped[str] = mapped_column(String(3))
    goods_minor: Mapped[int]  # the lines at bank-client (or campaign entry) prices
    saving_minor: Mapped[int]  # against the public prices: what the bank's customer saved
    protection_minor: Mapped[int] = mapped_column(default=0)  # device protection premium
    total_minor: Mapped[int]  # goods + protection: what is authorised
    captured_minor: Mapped[int] = mapped_column(default=0)
    refunded_minor: Mapped[int] = mapped_column(default=0)
    payment_ref: Mapped[str | None] = mapped_column(String(40), unique=True)
    instalment_months: Mapped[int | None]  # 0% instalments offered by the bank
    instalment_plan: Mapped[list[Any] | None]  # [{"due": date, "amount_minor": n}, …]
    protection_policy_ref: Mapped[str | None] = mapped_column(String(40))
    # Shared with the partner only with the customer's consent, and nothing else about them.
    shipping_address: Mapped[dict[str, Any] | None]
    address_consent_at: Mapped[datetime | None]
    commission_minor: Mapped[int | None]  # accrued at completion, clawed back pro rata on return
    placed_at: Mapped[datetime]
    reserved_until: Mapped[datetime | None]  # stock held for payment until then
    return_window_ends_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ProtectionPolicy(Base):
    """The device-protection policy of an order, issued when its premium is captured (the first
    shipment) by the insurer underwriting then. The premium, less the bank's commission under
    the insurer's contract, is passed to the insurer once the return window has ended (the
    policy's cooling-off), and handed back if the whole order is returned after that. Units
    returned take their share of the premium with them: `premium_minor` is then the kept units'
    share (`protection.cover_kept`)."""

    __tablename__ = "shop_protection_policies"
    __table_args__ = (
        CheckConstraint("premium_minor > 0", name="premium_positive"),
        CheckConstraint(
            "commission_minor IS NULL OR (commission_minor >= 0 "
            "AND commission_minor <= premium_minor)",
            name="commission_within_premium",
        ),
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), primary_key=True)
    insurer_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    policy_ref: Mapped[str] = mapped_column(String(40), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    premium_minor: Mapped[int]
    issued_at: Mapped[datetime]
    passed_at: Mapped[datetime | None]  # premium passed to the insurer (order completed)
    commission_minor: Mapped[int | None]  # the bank's, on the premium, when passed
    cancelled_at: Mapped[datetime | None]  # premium refunded: the policy never ran or was undone


class OrderLine(Base):
    __tablename__ = "shop_order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id", name="uq_shop_order_lines_product"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_minor > 0 AND unit_minor <= public_unit_minor", name="unit_price"),
        CheckConstraint("shipped_quantity >= 0 AND shipped_quantity <= quantity", name="shipped"),
        CheckConstraint(
            "returned_quantity >= 0 AND returned_quantity <= shipped_quantity", name="returned"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("shop_products.id"), index=True)
    quantity: Mapped[int]
    unit_minor: Mapped[int]  # what the customer pays per unit
    public_unit_minor: Mapped[int]  # the public price at the time of the order
    shipped_quantity: Mapped[int] = mapped_column(default=0)
    returned_quantity: Mapped[int] = mapped_column(default=0)


class OrderEvent(Base):
    """One transition of an order: its history, and what the partner's webhooks report."""

    __tablename__ = "shop_order_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)


class Shipment(IdMixin, Base):
    """Goods sent for an order; each shipment captures its share of the payment."""

    __tablename__ = "shop_shipments"
    __table_args__ = (CheckConstraint("amount_minor >= 0", name="amount_non_negative"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    lines: Mapped[list[Any]]  # [{"product": sku, "quantity": n}, …]
    amount_minor: Mapped[int]  # captured for it
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking: Mapped[str | None] = mapped_column(String(100))
    shipped_at: Mapped[datetime]


# -- partner webhooks: a transactional outbox ----------------------------------------------------


class WebhookEndpoint(IdMixin, Base):
    """Where a partner receives its events, signed with the endpoint's secret."""

    __tablename__ = "shop_webhook_endpoints"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))  # "whsec_" + base64, as Standard Webhooks
    # The secret a rotation replaced, still signing beside the new one until `…_until`, so that
    # a receiver may switch to the new secret at its own pace within the grace period.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None]
    event_types: Mapped[list[str]]  # empty: every event
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class WebhookEvent(IdMixin, Base):
    """An event for a partner, written in the same transaction as the change it reports: it
    exists exactly when the change committed. `public_id` is the `webhook-id` header."""

    __tablename__ = "shop_webhook_events"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at `next_attempt_at`
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after the last retry; the bank can replay it


class WebhookDelivery(Base):
    """One event to one endpoint, retried with backoff until a 2xx or the last attempt."""

    __tablename__ = "shop_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_shop_webhook_deliveries"),
        Index("ix_shop_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("shop_webhook_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("shop_webhook_endpoints.id"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


# -- after the purchase ------------------------------------------------------------------------


class TicketStatus(StrEnum):
    OPEN = "open"  # waiting for the partner
    ANSWERED = "answered"  # waiting for the customer
    RESOLVED = "resolved"
    CLOSED = "closed"


class SupportTicket(IdMixin, Base):
    """A customer's question to a partner about an order; the bank sees every ticket."""

    __tablename__ = "shop_support_tickets"
    __table_args__ = (Index("ix_shop_support_tickets_partner_status", "partner_id", "status"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus))
    opened_at: Mapped[datetime]
    first_response_due_at: Mapped[datetime]
    first_responded_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class TicketMessage(Base):
    __tablename__ = "shop_support_messages"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("shop_support_tickets.id"), index=True)
    author_kind: Mapped[str] = mapped_column(String(16))  # customer | partner | bank
    author_ref: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime]


class NpsResponse(Base):
    """A customer's answer to "how likely are you to recommend…", once per delivered order."""

    __tablename__ = "shop_nps_responses"
    __table_args__ = (CheckConstraint("score >= 0 AND score <= 10", name="score_range"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]
