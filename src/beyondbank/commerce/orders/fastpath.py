"""The usual checkout on PostgreSQL ("buy now", no group buy) as calls of the functions of
migration 0009, each a transaction of its own: `place` (transaction 1: the reads, then the claim,
the stock, the order, its lines, its event and `order.created`) and `paid` (transaction 2).
Anything unusual answers None or False with nothing written, and `service` takes the general
path, which decides and words it; the pricing and every rule that needs no row are the general
path's own (`checkout`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError

from beyondbank.commerce.models import Order, OrderLine, OrderStatus
from beyondbank.commerce.orders import checkout
from beyondbank.commerce.orders import transitions as machine
from beyondbank.commerce.orders.checkout import Priced
from beyondbank.core import idempotency
from beyondbank.core.authz import Principal
from beyondbank.core.db import UTCDateTime
from beyondbank.core.errors import Problem, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork

S = OrderStatus


def on_server(uow: UnitOfWork) -> bool:
    """PostgreSQL: the usual checkout runs in the functions of migration 0009."""
    return uow.session.get_bind().dialect.name == "postgresql"


def place(
    uow: UnitOfWork,
    actor: Principal,
    customer_id: int,
    data: checkout.CheckoutIn,
    key: str | None,
    fingerprint: str,
    lock_seconds: int,
    reservation: timedelta,
) -> tuple[checkout.Placed, idempotency.Claim | None] | None:
    """Transaction 1 of a "buy now" checkout without a group buy, in two calls (PostgreSQL):
    `shop_checkout_open` reads the partner, whether the key is known, the products with their
    prices now and the customer's account; the lines are priced and checked here as
    `service._place` does; then `shop_checkout_place` claims the key (holding its answer, as
    `idempotency.claim_within` does), reserves the stock in product id order and writes the
    order, its lines, its event and `order.created`, all or nothing. None when it is not the
    usual case, with nothing written: an unknown partner, a key used before, and with a key
    any refusal but a sold-out product (the general path claims the key first, so that a
    replay wins over a refusal); the general path then decides."""
    if key is not None:
        idempotency.check_key(key)
    now = uow.clock.now()
    order_id = new_public_id("ord")
    scope = f"shop-checkout:{actor.public_id}"
    connection = uow.single_statements()
    opened = connection.execute(
        _CHECKOUT_OPEN,
        {
            "partner": data.partner_id,
            "customer": customer_id,
            "products": sorted({item.product_id for item in data.items}),
            "at": now,
            "scope": scope,
            "key": key,
        },
    ).scalar_one()
    partner = opened["partner"]
    if partner is None or opened["known"]:
        return None
    currency = partner["currency"]
    try:
        priced, (goods, saving, protection, total) = _priced_on_server(data, partner, opened)
    except Problem:
        if key is not None:
            return None
        raise
    order = Order(
        public_id=order_id,
        customer_id=customer_id,
        partner_id=partner["id"],
        campaign_id=None,
        status=S.PENDING_PAYMENT,
        currency=currency,
        goods_minor=goods,
        saving_minor=saving,
        protection_minor=protection,
        total_minor=total,
        captured_minor=0,
        refunded_minor=0,
        payment_ref=None,
        commission_minor=None,
        return_window_ends_at=None,
        instalment_months=data.instalment_months,
        instalment_plan=checkout.instalments(total, data.instalment_months, now),
        protection_policy_ref=f"DPP-{order_id.split('_', 1)[1]}" if protection else None,
        shipping_address=data.shipping_address,
        address_consent_at=now,
        placed_at=now,
        reserved_until=now + reservation,
        updated_at=now,
    )
    lines = [
        OrderLine(
            product_id=p.product_id,
            quantity=p.quantity,
            unit_minor=p.unit_minor,
            public_unit_minor=max(p.public_unit_minor, p.unit_minor),
            shipped_quantity=0,
            returned_quantity=0,
        )
        for p in priced
    ]
    sku = {p.product_id: p.sku for p in priced}
    # As `checkout.reserve` takes them: one quantity per product, in product id order.
    reserve = dict(sorted({p.product_id: p.quantity for p in priced}.items()))
    event_id, payload = _event(order, "order.created", lines, sku, now)
    try:
        placed = connection.execute(
            _CHECKOUT_PLACE,
            {
                "scope": scope,
                "key": key,
                "fingerprint": fingerprint,
                "locked_until": now + timedelta(seconds=lock_seconds),
                "response": json.dumps({"order_id": order_id}),
                "public_id": order_id,
                "customer": customer_id,
                "partner": partner["id"],
                "currency": currency,
                "goods": goods,
                "saving": saving,
                "protection": protection,
                "total": total,
                "instalment_months": data.instalment_months,
                "instalment_plan": _json_or_null(order.instalment_plan),
                "policy_ref": order.protection_policy_ref,
                "address": json.dumps(data.shipping_address),
                "now": now,
                "reserved_until": order.reserved_until,
                "actor": checkout.who(actor),
                "reserve": list(reserve),
                "reserve_quantities": list(reserve.values()),
                "products": [line.product_id for line in lines],
                "quantities": [line.quantity for line in lines],
                "units": [line.unit_minor for line in lines],
                "public_units": [line.public_unit_minor for line in lines],
                "event_id": event_id,
                "payload": payload,
            },
        ).one()
    except DBAPIError as exc:
        refusal = getattr(exc.orig, "sqlstate", None)
        if refusal == _SOLD_OUT:
            product_id = int(exc.orig.diag.message_detail)  # type: ignore[union-attr]
            raise checkout.sold_out(sku[product_id], reserve[product_id]) from None
        if refusal == _CLAIMED_BEFORE:
            return None
        raise
    order.id = placed.order_id
    for line in lines:
        line.order_id = order.id
    claim = None if key is None else idempotency.Claim(placed.claim_id)
    return checkout.Placed(
        order, str(opened["account"][1]), partner["public_id"], lines, sku
    ), claim


def _priced_on_server(
    data: checkout.CheckoutIn, partner: dict[str, Any], opened: dict[str, Any]
) -> tuple[list[Priced], tuple[int, int, int, int]]:
    """The lines priced and checked from what `shop_checkout_open` read, as `_place` does."""
    expected = checkout.expected_total(data, partner["currency"])
    for index, item in enumerate(data.items):
        if item.quantity <= 0:
            raise invalid(f"body.items.{index}.quantity", _("must be at least 1"))
    offers = {
        row[0]: checkout.Offer(row[1], row[2], row[3], row[4] == "active", _prices(row[5], row[6]))
        for row in opened["products"]
    }
    priced = checkout.price_offers(partner["id"], data.items, offers, field="body.items")
    totals = checkout.totals(priced, data, partner["currency"], expected)
    if opened["account"] is None:
        raise checkout.no_account(partner["currency"])
    return priced, totals


def _prices(public_minor: int | None, client_minor: int | None) -> tuple[int, int] | None:
    if public_minor is None or client_minor is None:
        return None
    return public_minor, client_minor


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _event(
    order: Order, event_type: str, lines: Sequence[OrderLine], sku: dict[int, str], now: datetime
) -> tuple[str, str]:
    """A partner event's id and payload as `outbox.emit` writes them, for the server's functions."""
    data = checkout.partner_payload_of(order, lines, sku)
    payload = {"type": event_type, "timestamp": now.isoformat(), "data": data}
    return new_public_id("msg"), json.dumps(payload)


def paid(
    uow: UnitOfWork, actor: Principal, placed: checkout.Placed, payment_id: str, captured_minor: int
) -> bool:
    """Transaction 2 of a checkout in one call (PostgreSQL): `pending_payment →
    paid` by the conditional UPDATE, the order's event and `order.paid`. False, with nothing
    written, when the order is no longer waiting for its payment."""
    order = placed.order
    machine.check(order, S.PAID)
    now = uow.clock.now()
    before = (order.status, order.payment_ref, order.captured_minor, order.reserved_until)
    order.status, order.payment_ref, order.captured_minor = S.PAID, payment_id, captured_minor
    order.reserved_until, order.updated_at = None, now
    event_id, payload = _event(order, "order.paid", placed.lines, placed.sku, now)
    moved = (
        uow.single_statements()
        .execute(
            _CHECKOUT_PAID,
            {
                "order": order.id,
                "partner": order.partner_id,
                "payment_ref": payment_id,
                "captured": captured_minor,
                "now": now,
                "actor": checkout.who(actor),
                "event_id": event_id,
                "payload": payload,
            },
        )
        .scalar_one()
    )
    if not moved:
        order.status, order.payment_ref, order.captured_minor, order.reserved_until = before
    return bool(moved)


# SQLSTATEs of `shop_checkout_place`'s refusals (migration 0009).
_SOLD_OUT, _CLAIMED_BEFORE = "BS001", "BS002"
_CHECKOUT_OPEN = text(
    "SELECT shop_checkout_open(:partner, CAST(:customer AS BIGINT), "
    "CAST(:products AS VARCHAR[]), :at, :scope, :key)"
).bindparams(bindparam("at", type_=UTCDateTime()))
_CHECKOUT_PLACE = text(
    "SELECT order_id, claim_id FROM shop_checkout_place(:scope, :key, :fingerprint, "
    ":locked_until, CAST(:response AS JSONB), :public_id, "
    "CAST(:customer AS BIGINT), CAST(:partner AS BIGINT), :currency, CAST(:goods AS BIGINT), "
    "CAST(:saving AS BIGINT), CAST(:protection AS BIGINT), CAST(:total AS BIGINT), "
    "CAST(:instalment_months AS BIGINT), CAST(:instalment_plan AS JSONB), :policy_ref, "
    "CAST(:address AS JSONB), :now, :reserved_until, :actor, CAST(:reserve AS BIGINT[]), "
    "CAST(:reserve_quantities AS BIGINT[]), CAST(:products AS BIGINT[]), "
    "CAST(:quantities AS BIGINT[]), CAST(:units AS BIGINT[]), CAST(:public_units AS BIGINT[]), "
    ":event_id, CAST(:payload AS JSONB))"
).bindparams(
    bindparam("locked_until", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
    bindparam("reserved_until", type_=UTCDateTime()),
)
_CHECKOUT_PAID = text(
    "SELECT shop_checkout_paid(CAST(:order AS BIGINT), CAST(:partner AS BIGINT), :payment_ref, "
    "CAST(:captured AS BIGINT), :now, :actor, :event_id, CAST(:payload AS JSONB))"
).bindparams(bindparam("now", type_=UTCDateTime()))
