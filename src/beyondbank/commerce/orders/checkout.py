"""The building blocks of a checkout that never commit: stock reserved by conditional UPDATE,
lines priced at the bank-client price (one line per product), the totals and the bank's offers,
the webhook payload, and payment keys derived from the order; shared by the general path
(`service`) and the PostgreSQL fast path (`fastpath`).

Stock rules, enforced by the database (and its CHECKs as a backstop): a reservation succeeds only
`WHERE stock_on_hand - stock_reserved >= n`; products are updated in id order, so two checkouts
of the same products queue on the row locks instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.models import Order, OrderLine, Partner, Product, ProductStatus
from beyondbank.commerce.orders import crosssell
from beyondbank.commerce.webhooks import outbox
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, FieldError, InvalidInput, LimitReached, invalid
from beyondbank.core.i18n import _
from beyondbank.core.money import Money
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork


class SoldOut(LimitReached):
    """Not enough stock left for the quantity asked: nothing was reserved or charged."""

    slug = "sold-out"
    title = "Not enough stock left"


@dataclass(frozen=True, slots=True)
class Wanted:
    """A line the customer wants, as it came in (public ids)."""

    product_id: str
    quantity: int
    campaign_id: str | None = None


@dataclass(frozen=True, slots=True)
class Priced:
    product_id: int
    sku: str
    quantity: int
    unit_minor: int
    public_unit_minor: int
    campaign_id: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """A product as a checkout sees it: whose it is, whether it is on sale, its prices now."""

    id: int
    partner_id: int
    sku: str
    active: bool
    prices: tuple[int, int] | None  # (public_minor, client_minor) now; None: no price now


# How long stock is held for an order waiting for its payment unless the caller says otherwise:
# the setting's default (`BEYONDBANK_SHOP_RESERVATION_MINUTES`), so there is one number.
RESERVATION = timedelta(minutes=Settings.model_fields["shop_reservation_minutes"].default)


@dataclass(frozen=True, slots=True)
class CheckoutIn:
    partner_id: str
    shipping_address: dict[str, Any]
    share_address_with_partner: bool
    instalment_months: int | None = None
    device_protection: bool = False
    expected_total: str | None = None  # the total the customer saw ("24.99"); a change is a 409
    items: list[Wanted] = field(default_factory=list)  # "buy now"; empty: the cart


@dataclass(frozen=True, slots=True)
class Placed:
    """What transaction 1 made and read, for the payment and transaction 2: the order, the
    customer's account and the partner (public ids, which never change), the lines as written."""

    order: Order
    account_ref: str
    partner_ref: str
    lines: list[OrderLine]
    sku: dict[int, str]


# -- what both checkout paths share: totals, the bank's offers, who acts ---------------------


def totals(
    priced: Sequence[Priced], data: CheckoutIn, currency: str, expected: int | None
) -> tuple[int, int, int, int]:
    """Goods, saving, protection premium and total; a total other than the one the customer saw
    is a 409."""
    goods = sum(p.unit_minor * p.quantity for p in priced)
    saving = sum(max(p.public_unit_minor - p.unit_minor, 0) * p.quantity for p in priced)
    protection = (
        crosssell.protection_for([(p.unit_minor, p.quantity) for p in priced])
        if data.device_protection
        else 0
    )
    total = goods + protection
    if expected is not None and expected != total:
        raise Conflict(
            _(
                "The total is now %(total)s, not %(expected)s: check the order again.",
                total=Money(total, currency),
                expected=Money(expected, currency),
            ),
            extra={"total_minor": total},
        )
    return goods, saving, protection, total


def no_account(currency: str) -> InvalidInput:
    return InvalidInput(
        _("You have no %(currency)s account at the bank to pay from.", currency=currency),
        errors=(
            FieldError("body.partner_id", _("no %(currency)s deposit account", currency=currency)),
        ),
    )


def instalments(total: int, months: int | None, now: datetime) -> list[dict[str, Any]] | None:
    if months is None:
        return None
    plan = crosssell.instalment_plan(total, months, now.date())
    return [{"due": i.due.isoformat(), "amount_minor": i.amount_minor} for i in plan]


def expected_total(data: CheckoutIn, currency: str) -> int | None:
    if data.expected_total is None:
        return None
    try:
        return Money.parse(data.expected_total, currency).amount
    except ValueError as exc:
        raise invalid("body.expected_total", str(exc)) from None


def who(actor: Principal) -> str:
    return f"{actor.kind}:{actor.public_id}"[:40]


def products_by_public_ids(uow: UnitOfWork, public_ids: Iterable[str]) -> dict[str, Product]:
    ids = set(public_ids)
    if not ids:
        return {}
    rows = uow.session.scalars(select(Product).where(Product.public_id.in_(ids))).all()
    return {p.public_id: p for p in rows}


def price_lines(
    uow: UnitOfWork, partner: Partner, wanted: Sequence[Wanted], *, field: str
) -> list[Priced]:
    """Each line at its bank-client price now (see `price_offers`)."""
    products = products_by_public_ids(uow, (w.product_id for w in wanted))
    prices = catalog.prices_now(uow, (p.id for p in products.values()), uow.clock.now())
    offers = {
        public_id: Offer(
            p.id, p.partner_id, p.sku, p.status is ProductStatus.ACTIVE, prices.get(p.id)
        )
        for public_id, p in products.items()
    }
    return price_offers(partner.id, wanted, offers, field=field)


def price_offers(
    partner_id: int, wanted: Sequence[Wanted], offers: Mapping[str, Offer], *, field: str
) -> list[Priced]:
    """Each line at its bank-client price now; every unknown, foreign or unpriced product is a
    field error (all of them at once), so bad input writes nothing."""
    errors: list[FieldError] = []
    priced: list[Priced] = []
    for index, item in enumerate(wanted):
        where = f"{field}.{index}.product_id"
        offer = offers.get(item.product_id)
        if offer is None or offer.partner_id != partner_id:
            errors.append(
                FieldError(
                    where, _("no product %(product_id)r in this shop", product_id=item.product_id)
                )
            )
            continue
        if not offer.active or offer.prices is None:
            errors.append(FieldError(where, _("not for sale now")))
            continue
        public_minor, client_minor = offer.prices
        priced.append(
            Priced(offer.id, offer.sku, item.quantity, client_minor, public_minor, item.campaign_id)
        )
    if errors:
        raise InvalidInput(_("Some lines cannot be bought."), errors=errors)
    return merge_lines(priced)


def merge_lines(priced: Sequence[Priced]) -> list[Priced]:
    """One line per product (and group buy): the same product asked for twice is one line of
    the sum, where the first was asked. An order keeps one line per product everywhere after
    it (reservation, shipping, returns, release), so the stock is reserved, and a group buy's
    per-customer limit checked, on the sum."""
    merged: dict[tuple[int, str | None], Priced] = {}
    for line in priced:
        key = (line.product_id, line.campaign_id)
        before = merged.get(key)
        merged[key] = (
            line if before is None else replace(before, quantity=before.quantity + line.quantity)
        )
    return list(merged.values())


def sold_out(sku: str, n: int) -> SoldOut:
    return SoldOut(
        _("Not enough of %(sku)s left for %(n)s.", sku=sku, n=n),
        extra={"limit": "stock", "sku": sku},
    )


def reserve(uow: UnitOfWork, quantities: dict[int, int], sku_of: dict[int, str]) -> None:
    """Reserve every product's quantity, in product id order, or raise SoldOut (the caller rolls
    back whatever was reserved before it)."""
    for product_id in sorted(quantities):
        n = quantities[product_id]
        done = uow.session.execute(
            update(Product)
            .where(
                Product.id == product_id,
                Product.status == ProductStatus.ACTIVE,
                Product.stock_on_hand - Product.stock_reserved >= n,
            )
            .values(stock_reserved=Product.stock_reserved + n)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise sold_out(sku_of[product_id], n)


def release(uow: UnitOfWork, quantities: dict[int, int]) -> None:
    """Give reserved units back (an order cancelled before they shipped)."""
    for product_id in sorted(quantities):
        n = quantities[product_id]
        if n > 0:
            uow.session.execute(
                update(Product)
                .where(Product.id == product_id, Product.stock_reserved >= n)
                .values(stock_reserved=Product.stock_reserved - n)
                .execution_options(synchronize_session=False)
            )


def consume(uow: UnitOfWork, quantities: dict[int, int]) -> None:
    """Reserved units leave the warehouse: both on-hand and reserved go down."""
    for product_id in sorted(quantities):
        n = quantities[product_id]
        if n > 0:
            done = uow.session.execute(
                update(Product)
                .where(Product.id == product_id, Product.stock_reserved >= n)
                .values(
                    stock_on_hand=Product.stock_on_hand - n,
                    stock_reserved=Product.stock_reserved - n,
                )
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise RuntimeError(f"product {product_id}: fewer units reserved than shipped")


def restock(uow: UnitOfWork, quantities: dict[int, int]) -> None:
    """Returned units are back on hand."""
    for product_id in sorted(quantities):
        if quantities[product_id] > 0:
            uow.session.execute(
                update(Product)
                .where(Product.id == product_id)
                .values(stock_on_hand=Product.stock_on_hand + quantities[product_id])
                .execution_options(synchronize_session=False)
            )


def lines_of(uow: UnitOfWork, order: Order) -> list[OrderLine]:
    return list(
        uow.session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    )


def skus(uow: UnitOfWork, lines: Sequence[OrderLine]) -> dict[int, str]:
    ids = {line.product_id for line in lines}
    return {p.id: p.sku for p in catalog.products_by_ids(uow, ids).values()}


def unshipped(lines: Sequence[OrderLine]) -> dict[int, int]:
    return {line.product_id: line.quantity - line.shipped_quantity for line in lines}


# -- what the partner hears ------------------------------------------------------------------


def partner_payload(
    uow: UnitOfWork,
    order: Order,
    lines: Sequence[OrderLine] | None = None,
    sku: dict[int, str] | None = None,
) -> dict[str, Any]:
    """The order as the partner sees it: no customer data beyond the consented address.
    `lines` and `sku`: the order's lines and their products' SKUs when the caller has them."""
    if lines is None:
        lines = lines_of(uow, order)
    if sku is None:
        sku = skus(uow, lines)
    return partner_payload_of(order, lines, sku)


def partner_payload_of(
    order: Order, lines: Sequence[OrderLine], sku: dict[int, str]
) -> dict[str, Any]:
    """`partner_payload` from the order, its lines and their SKUs as the caller has them."""
    return {
        "order_id": order.public_id,
        "status": order.status.value,
        "currency": order.currency,
        "goods_minor": order.goods_minor,
        "protection_minor": order.protection_minor,
        "total_minor": order.total_minor,
        "captured_minor": order.captured_minor,
        "refunded_minor": order.refunded_minor,
        "lines": [
            {
                "sku": sku[line.product_id],
                "quantity": line.quantity,
                "unit_minor": line.unit_minor,
                "shipped_quantity": line.shipped_quantity,
                "returned_quantity": line.returned_quantity,
            }
            for line in lines
        ],
        "shipping_address": order.shipping_address if order.address_consent_at else None,
    }


def emit(
    uow: UnitOfWork,
    order: Order,
    event_type: str,
    *,
    lines: Sequence[OrderLine] | None = None,
    sku: dict[int, str] | None = None,
) -> None:
    """The partner's webhook event, in the transaction of the change it reports."""
    outbox.emit(
        uow,
        partner_id=order.partner_id,
        event_type=event_type,
        data=partner_payload(uow, order, lines, sku),
    )


# -- payment keys: derived from the order, so a retry never pays twice -----------------------


def authorise_key(order: Order) -> str:
    return f"shop:{order.public_id}:authorise"


def checkout_capture_key(order: Order) -> str:
    return f"shop:{order.public_id}:capture"


def reauthorise_key(order: Order, replaced_payment_id: str) -> str:
    """One renewal per authorisation it replaces: a rerun gets the bank's first answer."""
    return f"shop:{order.public_id}:reauthorise:{replaced_payment_id}"


def void_key(order: Order, payment_id: str) -> str:
    return f"shop:{order.public_id}:void:{payment_id}"


def shipment_key(order: Order, number: int, what: str) -> str:
    return f"shop:{order.public_id}:shipment:{number}:{what}"


def refund_key(order: Order, what: str, payment_id: str) -> str:
    return f"shop:{order.public_id}:refund:{what}:{payment_id}"
