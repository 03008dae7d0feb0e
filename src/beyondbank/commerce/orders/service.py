"""Carts, checkout and orders: the use cases, and the only place in this area that commits.

Checkout runs in two short transactions with the payment gateway between them, holding no lock
during the call: (1) reserve stock, price and create the order `pending_payment`; (2) after the
bank has authorised, mark it `paid`. The order decides who wins: a payment is voided or refunded
only once its order is irrevocably cancelled, and an order becomes paid only with an approved
authorisation, so no payment is ever kept without an order and no order is paid without a payment.

On PostgreSQL the usual checkout ("buy now", no group buy) runs the same steps as calls of the
functions of migration 0009 (`fastpath.place`, `fastpath.paid`), each a transaction of its own;
anything unusual, the cart and group buys take the general path, which also runs on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import make_transient_to_detached

from beyondbank.commerce import service as commerce
from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.groupbuy import service as groupbuy
from beyondbank.commerce.groupbuy import tiers as pricing
from beyondbank.commerce.models import (
    CampaignRefund,
    CampaignStatus,
    Cart,
    CartItem,
    GroupBuy,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Partner,
    Shipment,
)
from beyondbank.commerce.orders import checkout, crosssell, fastpath, postings, protection
from beyondbank.commerce.orders import transitions as machine

# What callers name through this module (the checkout's input, what it placed, the hold's length).
from beyondbank.commerce.orders.checkout import RESERVATION as RESERVATION
from beyondbank.commerce.orders.checkout import CheckoutIn as CheckoutIn
from beyondbank.commerce.orders.checkout import Placed as Placed
from beyondbank.commerce.orders.checkout import Priced, Wanted
from beyondbank.core import audit, idempotency
from beyondbank.core.authz import SYSTEM, Principal, ensure_partner_visible
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    IdempotencyInFlight,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Problem,
    invalid,
)
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money, bps_of, pro_rata
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.payments import service as payments
from beyondbank.payments.gateway import (
    DECLINED,
    AuthoriseRequest,
    PayeeKind,
    PaymentDeclined,
    PaymentGateway,
    PaymentResult,
    PaymentStatus,
)
from beyondbank.settlement.statements import SHOP_SALES_CATEGORY

S = OrderStatus
# Who completes orders, and who renews their authorisations, in the audit trail and history.
_JOB_COMPLETE = Principal(
    kind="system", id=0, public_id="system:complete-orders", label="complete-orders"
)
_JOB_RENEW = Principal(
    kind="system", id=0, public_id="system:reauthorise-orders", label="reauthorise-orders"
)
# The notes `reauthorise_orders` leaves in an order's history; the customer's order page says
# them in the customer's language.
REAUTHORISED = "payment re-authorised"
# How long a run of `reauthorise_orders` keeps an order to itself (a dead run's claim lapses).
_RENEWAL_LEASE = timedelta(minutes=2)
REAUTHORISATION_DECLINED = "re-authorisation declined"
PARTLY_RETURNED = "partly returned: the units kept complete after the return window"


def _end_reads(uow: UnitOfWork) -> None:
    """End a transaction that only read, before a call to the bank: no lock or snapshot of ours
    is held while the bank works. (A commit, not a rollback: there is nothing to undo, and a
    rollback of a session sharing its connection, as in the tests, could undo the bank's work.)"""
    uow.commit()


# -- who may act -----------------------------------------------------------------------------


def customer_of(actor: Principal) -> int:
    """Carts and the customer's order views are for a signed-in customer only."""
    if actor.kind != "customer" or actor.customer_id is None:
        raise Forbidden(_("Carts, checkout and your orders are for signed-in customers."))
    return actor.customer_id


def partner_side(actor: Principal) -> None:
    """The partner's views of orders: its own people and systems, and the bank's staff."""
    if actor.kind == "customer":
        raise Forbidden(_("This is the partner's view of its orders."))


# -- carts -----------------------------------------------------------------------------------


def _open_cart(uow: UnitOfWork, customer_id: int, partner_id: int) -> Cart | None:
    return uow.session.scalars(
        select(Cart)
        .where(
            Cart.customer_id == customer_id,
            Cart.partner_id == partner_id,
            Cart.checked_out.is_(False),
        )
        .order_by(Cart.id)
        .limit(1)
    ).one_or_none()


def _campaign(uow: UnitOfWork, public_id: str, *, field: str) -> GroupBuy:
    campaign = uow.session.scalars(
        select(GroupBuy).where(GroupBuy.public_id == public_id)
    ).one_or_none()
    if campaign is None:
        raise invalid(field, _("no group buy %(public_id)r", public_id=public_id))
    return campaign


def add_item(
    uow: UnitOfWork, actor: Principal, *, product_id: str, quantity: int, campaign_id: str | None
) -> Cart:
    """Add units of a product to the customer's cart with the product's partner (one cart per
    customer and partner; adding a product again adds to its quantity)."""
    customer_id = customer_of(actor)
    if quantity <= 0:
        raise invalid("body.quantity", _("must be at least 1"))
    product = checkout.products_by_public_ids(uow, [product_id]).get(product_id)
    if product is None:
        raise invalid("body.product_id", _("no product %(product_id)r", product_id=product_id))
    campaign_pk = None
    if campaign_id is not None:
        campaign = _campaign(uow, campaign_id, field="body.campaign_id")
        if campaign.product_id != product.id:
            raise invalid("body.campaign_id", _("this group buy is for another product"))
        campaign_pk = campaign.id
    now = uow.clock.now()
    cart = _open_cart(uow, customer_id, product.partner_id)
    if cart is None:
        cart = Cart(
            public_id=new_public_id("crt"),
            customer_id=customer_id,
            partner_id=product.partner_id,
            checked_out=False,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(cart)
        uow.session.flush()
    item = uow.session.scalars(
        select(CartItem).where(CartItem.cart_id == cart.id, CartItem.product_id == product.id)
    ).one_or_none()
    if item is None:
        uow.session.add(
            CartItem(
                cart_id=cart.id,
                product_id=product.id,
                campaign_id=campaign_pk,
                quantity=quantity,
                added_at=now,
            )
        )
    else:
        item.quantity += quantity
        item.campaign_id = campaign_pk
    cart.updated_at = now
    uow.commit()
    return cart


def remove_item(uow: UnitOfWork, actor: Principal, product_id: str) -> None:
    customer_id = customer_of(actor)
    product = checkout.products_by_public_ids(uow, [product_id]).get(product_id)
    cart = _open_cart(uow, customer_id, product.partner_id) if product else None
    item = None
    if product is not None and cart is not None:
        item = uow.session.scalars(
            select(CartItem).where(CartItem.cart_id == cart.id, CartItem.product_id == product.id)
        ).one_or_none()
    if item is None:
        raise NotFound(_("No product %(product_id)r in your cart.", product_id=product_id))
    uow.session.delete(item)
    uow.commit()


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_minor: int | None  # None: not for sale now
    public_unit_minor: int | None
    campaign_id: str | None


@dataclass(frozen=True, slots=True)
class CartView:
    cart_id: str
    partner_id: str
    currency: str
    lines: list[CartLine]
    goods_minor: int


def carts(uow: UnitOfWork, actor: Principal) -> list[CartView]:
    """The customer's open carts, one per partner, priced now."""
    customer_id = customer_of(actor)
    rows = uow.session.scalars(
        select(Cart)
        .where(Cart.customer_id == customer_id, Cart.checked_out.is_(False))
        .order_by(Cart.id)
    ).all()
    out = []
    for cart in rows:
        partner = uow.session.get_one(Partner, cart.partner_id)
        out.append(_cart_view(uow, cart, partner))
    return out


def _cart_items(uow: UnitOfWork, cart: Cart) -> list[Wanted]:
    items = uow.session.scalars(
        select(CartItem).where(CartItem.cart_id == cart.id).order_by(CartItem.id)
    ).all()
    products = catalog.products_by_ids(uow, {i.product_id for i in items})
    campaigns = {
        c.id: c.public_id
        for c in uow.session.scalars(
            select(GroupBuy).where(GroupBuy.id.in_({i.campaign_id for i in items if i.campaign_id}))
        )
    }
    return [
        Wanted(
            products[i.product_id].public_id,
            i.quantity,
            campaigns.get(i.campaign_id) if i.campaign_id else None,
        )
        for i in items
    ]


def _cart_view(uow: UnitOfWork, cart: Cart, partner: Partner) -> CartView:
    wanted = _cart_items(uow, cart)
    products = checkout.products_by_public_ids(uow, (w.product_id for w in wanted))
    prices = catalog.prices_now(uow, (p.id for p in products.values()), uow.clock.now())
    lines = []
    for w in wanted:
        product = products[w.product_id]
        price = prices.get(product.id)
        unit = price[1] if price else None
        if w.campaign_id and price:  # what checkout charges: the group buy's entry price
            campaign = _campaign(uow, w.campaign_id, field="cart.items")
            unit = groupbuy.entry_unit_minor(uow, campaign.id)
        lines.append(
            CartLine(
                product_id=product.public_id,
                sku=product.sku,
                title=product.title,
                quantity=w.quantity,
                unit_minor=unit,
                public_unit_minor=price[0] if price else None,
                campaign_id=w.campaign_id,
            )
        )
    goods = sum((line.unit_minor or 0) * line.quantity for line in lines)
    return CartView(cart.public_id, partner.public_id, partner.currency, lines, goods)


# -- offers: the bank's own products at checkout -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offers:
    partner_id: str
    currency: str
    goods_minor: int
    protection_minor: int
    insurer: str | None  # who underwrites device protection; None: not offered now
    instalments: dict[int, list[crosssell.Instalment]]  # for the goods alone


def offers(uow: UnitOfWork, actor: Principal, partner_id: str) -> Offers:
    """What the bank offers for the customer's cart with a partner: instalment plans over 3, 6
    and 12 months, and the device-protection premium."""
    customer_id = customer_of(actor)
    partner = commerce.get_partner(uow, partner_id, field="query.partner_id")
    cart = _open_cart(uow, customer_id, partner.id)
    if cart is None:
        raise invalid("query.partner_id", _("your cart with this partner is empty"))
    priced = checkout.price_lines(uow, partner, _cart_items(uow, cart), field="cart.items")
    campaign = _campaign_line(uow, priced, "cart.items")
    if campaign is not None:  # what checkout charges: the group buy's entry price
        line = priced[0]
        entry = groupbuy.entry_unit_minor(uow, campaign.id)
        priced = [Priced(line.product_id, line.sku, line.quantity, entry, line.public_unit_minor)]
    goods = sum(p.unit_minor * p.quantity for p in priced)
    insurer = protection.underwriter(uow, partner.currency)
    premium = crosssell.protection_for([(p.unit_minor, p.quantity) for p in priced])
    today = uow.clock.now().date()
    return Offers(
        partner.public_id,
        partner.currency,
        goods,
        premium if insurer else 0,
        insurer.name if insurer else None,
        {m: crosssell.instalment_plan(goods, m, today) for m in crosssell.INSTALMENT_MONTHS},
    )


# -- checkout ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkout:
    order: Order
    replayed: bool
    placed: Placed | None = None  # a new order: what was written, for the answer


def checkout_order(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    actor: Principal,
    data: CheckoutIn,
    *,
    key: str | None = None,
    fingerprint: str = "",
    lock_seconds: int = 120,
    reservation: timedelta = RESERVATION,
) -> Checkout:
    """Place and pay an order for the customer's cart (or `items`) with one partner; its stock
    is held for `reservation` (the `shop_reservation_minutes` setting) while the bank answers."""
    customer_id = customer_of(actor)
    if not data.share_address_with_partner:
        raise invalid(
            "body.share_address_with_partner",
            _("must be true: the partner needs the shipping address to send the order"),
        )
    if data.device_protection:
        # Only an insurer's policy may be sold: none underwriting in the currency is a 422 on
        # the field, before anything is written (on either path).
        try:
            protection.require_for_partner(uow, data.partner_id)
        finally:
            _end_reads(uow)
    if fastpath.on_server(uow) and data.items and not any(item.campaign_id for item in data.items):
        try:
            fast = fastpath.place(
                uow, actor, customer_id, data, key, fingerprint, lock_seconds, reservation
            )
        except BaseException:
            uow.rollback()
            raise
        if fast is not None:
            uow.commit()
            order = _pay(uow, gateway, actor, fast[0].order, fast[1], fast[0])
            return Checkout(order, replayed=False, placed=fast[0])
        uow.rollback()  # not the usual case: the general path decides
    partner = commerce.get_partner(uow, data.partner_id, field="body.partner_id")
    expected = checkout.expected_total(data, partner.currency)
    order_id = new_public_id("ord")
    held: idempotency.Claim | None = None
    try:
        if key is not None:
            # The claim is transaction 1's first write, already holding the answer (201, the
            # order): it commits with the order or not at all, so no claim or release of its own.
            claimed = idempotency.claim_within(
                uow,
                scope=f"shop-checkout:{actor.public_id}",
                key=key,
                fingerprint=fingerprint,
                lock_seconds=lock_seconds,
                status_code=201,
                response={"order_id": order_id},
            )
            if isinstance(claimed, idempotency.Replay):
                _end_reads(uow)
                return Checkout(_replayed(uow, gateway, actor, claimed), replayed=True)
            held = claimed
        placed = _place(uow, actor, customer_id, partner, data, expected, order_id, reservation)
        uow.commit()
    except BaseException:
        uow.rollback()
        raise
    order = _pay(uow, gateway, actor, placed.order, held, placed)
    return Checkout(order, replayed=False, placed=placed)


def _replayed(
    uow: UnitOfWork, gateway: PaymentGateway, actor: Principal, replay: idempotency.Replay
) -> Order:
    """The first request's outcome: its decline again, or its order as it stands now (resuming
    the payment of an order whose first request died before it was paid)."""
    body = replay.response
    if replay.status_code == PaymentDeclined.status:
        raise PaymentDeclined(
            _(str(body.get("detail", DECLINED))),
            extra={k: body[k] for k in ("decline_code", "payment_id", "order_id") if k in body},
        )
    order = customer_order(uow, actor, str(body["order_id"]))
    if order.status is S.PENDING_PAYMENT and (
        order.reserved_until is None or order.reserved_until > uow.clock.now()
    ):
        return _pay(uow, gateway, actor, order, None)
    return order


def _place(
    uow: UnitOfWork,
    actor: Principal,
    customer_id: int,
    partner: Partner,
    data: CheckoutIn,
    expected: int | None,
    order_id: str,
    reservation: timedelta,
) -> Placed:
    """Transaction 1: price, reserve and create the order `pending_payment` (not committed)."""
    cart = None
    wanted = data.items
    where = "body.items"
    if not wanted:
        cart = _open_cart(uow, customer_id, partner.id)
        wanted = _cart_items(uow, cart) if cart else []
        where = "cart.items"
    if not wanted:
        raise invalid("body.items", _("your cart with this partner is empty"))
    for index, item in enumerate(wanted):
        if item.quantity <= 0:
            raise invalid(f"{where}.{index}.quantity", _("must be at least 1"))
    priced = checkout.price_lines(uow, partner, wanted, field=where)
    campaign = _campaign_line(uow, priced, where)
    if campaign is not None:
        entry = groupbuy.join(
            uow, campaign_id=campaign.id, customer_id=customer_id, quantity=priced[0].quantity
        )
        line = priced[0]
        priced = [Priced(line.product_id, line.sku, line.quantity, entry, line.public_unit_minor)]
    goods, saving, protection, total = checkout.totals(priced, data, partner.currency, expected)
    account = payments.account_of_customer(uow, customer_id, partner.currency)
    if account is None:
        raise checkout.no_account(partner.currency)
    checkout.reserve(
        uow,
        {p.product_id: p.quantity for p in priced},
        {p.product_id: p.sku for p in priced},
    )
    now = uow.clock.now()
    order = Order(
        public_id=order_id,
        customer_id=customer_id,
        partner_id=partner.id,
        campaign_id=campaign.id if campaign else None,
        status=S.PENDING_PAYMENT,
        currency=partner.currency,
        goods_minor=goods,
        saving_minor=saving,
        protection_minor=protection,
        total_minor=total,
        captured_minor=0,
        refunded_minor=0,
        instalment_months=data.instalment_months,
        shipping_address=data.shipping_address,
        address_consent_at=now,
        placed_at=now,
        reserved_until=now + reservation,
        updated_at=now,
    )
    order.instalment_plan = checkout.instalments(total, data.instalment_months, now)
    uow.session.add(order)
    uow.session.flush()
    if protection:
        order.protection_policy_ref = f"DPP-{order.public_id.split('_', 1)[1]}"
    lines = [
        OrderLine(
            order_id=order.id,
            product_id=p.product_id,
            quantity=p.quantity,
            unit_minor=p.unit_minor,
            public_unit_minor=max(p.public_unit_minor, p.unit_minor),
            shipped_quantity=0,
            returned_quantity=0,
        )
        for p in priced
    ]
    uow.session.add_all(lines)
    uow.session.add(
        OrderEvent(
            order_id=order.id, to_status=S.PENDING_PAYMENT.value, at=now, actor=checkout.who(actor)
        )
    )
    if cart is not None:
        cart.checked_out = True
        cart.updated_at = now
    uow.session.flush()
    sku = {p.product_id: p.sku for p in priced}
    checkout.emit(uow, order, "order.created", lines=lines, sku=sku)
    return Placed(order, account.public_id, partner.public_id, lines, sku)


def _campaign_line(uow: UnitOfWork, priced: Sequence[Priced], where: str) -> GroupBuy | None:
    with_campaign = [i for i, p in enumerate(priced) if p.campaign_id]
    if not with_campaign:
        return None
    if len(priced) != 1:
        raise invalid(
            f"{where}.{with_campaign[0]}.campaign_id",
            _("a group-buy line is ordered on its own: check the other lines out separately"),
        )
    campaign = _campaign(uow, str(priced[0].campaign_id), field=f"{where}.0.campaign_id")
    if campaign.product_id != priced[0].product_id:
        raise invalid(f"{where}.0.campaign_id", _("this group buy is for another product"))
    return campaign


def _authorise_request(
    uow: UnitOfWork,
    order: Order,
    amount: int,
    what: str,
    placed: Placed | None = None,
) -> AuthoriseRequest:
    if placed is not None:  # just read and written by transaction 1: no need to read them again
        account_ref, partner_ref = placed.account_ref, placed.partner_ref
    else:
        customer = identity.customers_by_ids(uow, {order.customer_id})[order.customer_id]
        account = payments.account_for_customer(uow, customer.public_id, order.currency)
        if account is None:
            raise InvalidInput(
                _("The customer has no %(currency)s account at the bank.", currency=order.currency)
            )
        account_ref = account.public_id
        partner_ref = commerce.partner_public_ids(uow, {order.partner_id})[order.partner_id]
    return AuthoriseRequest(
        account_id=account_ref,
        amount_minor=amount,
        currency=order.currency,
        payee_kind=PayeeKind.PARTNER,
        payee_id=partner_ref,
        reference=order.public_id,
        category=SHOP_SALES_CATEGORY,
        description=f"Order {order.public_id} {what}",
    )


def _pay(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    actor: Principal,
    order: Order,
    held: idempotency.Claim | None,
    placed: Placed | None = None,
) -> Order:
    """Authorise the order's total (campaign orders: and capture it), then mark it paid; on a
    decline cancel it; on any failure after the authorisation, compensate. `placed`: the order
    as transaction 1 just wrote it (a checkout), else None (a replay: it is read again)."""
    request = _authorise_request(uow, order, order.total_minor, "checkout", placed)
    _end_reads(uow)
    try:
        result = gateway.authorise(request, key=checkout.authorise_key(order), actor=actor)
    except Exception:
        compensate(uow, gateway, order.public_id, "the payment gateway failed")
        raise
    if not result.approved:
        _declined(uow, actor, order, result, held)
    try:
        captured = 0
        if order.campaign_id is not None:  # group buys are paid in full when the customer joins
            gateway.capture(
                result.payment.id, key=checkout.checkout_capture_key(order), actor=actor
            )
            captured = order.total_minor
        # A checkout's claim already answers 201 with this order (written in transaction 1).
        return confirm_paid(
            uow,
            actor,
            order.public_id,
            result.payment.id,
            captured,
            held if placed is None else None,
            placed=placed,
        )
    except Exception:
        compensate(uow, gateway, order.public_id, "the order could not be marked paid")
        raise


def confirm_paid(
    uow: UnitOfWork,
    actor: Principal,
    order_id: str,
    payment_id: str,
    captured_minor: int,
    held: idempotency.Claim | None,
    *,
    placed: Placed | None = None,
) -> Order:
    """Transaction 2: pending_payment → paid, only if the order is still waiting for it.

    `placed`: the order as the checkout's transaction 1 wrote it, so it is not read again. The
    move is the same conditional UPDATE from `pending_payment` either way, so an order cancelled
    meanwhile (its reservation expired) is a 409 and the payment is compensated; its lines cannot
    have changed while it waited for its payment (nothing ships before it is paid)."""
    if placed is not None and inspect(placed.order).transient:  # placed by `fastpath.place`
        if fastpath.paid(uow, actor, placed, payment_id, captured_minor):
            uow.commit()
            # The caller gets the order as a row of its session, as from the general path,
            # without reading it back: every column is known.
            make_transient_to_detached(placed.order)
            uow.session.add(placed.order)
            uow.commit()  # no statement: it ends the transaction `add` began, keeping the row
            return placed.order
        uow.rollback()  # no longer waiting for its payment: the general path says why
        placed = None
    order = placed.order if placed is not None else _order(uow, order_id)
    machine.move(
        uow,
        order,
        S.PAID,
        actor=checkout.who(actor),
        payment_ref=payment_id,
        captured_minor=captured_minor,
        reserved_until=None,
    )
    if placed is not None:
        checkout.emit(uow, order, "order.paid", lines=placed.lines, sku=placed.sku)
    else:
        checkout.emit(uow, order, "order.paid")
    if held is not None:
        held.complete(uow, 201, {"order_id": order.public_id})
    uow.commit()
    return order


def _declined(
    uow: UnitOfWork,
    actor: Principal,
    order: Order,
    result: PaymentResult,
    held: idempotency.Claim | None,
) -> NoReturn:
    code = result.decline_code.value if result.decline_code else None
    order = _order(uow, order.public_id)
    if order.status is S.PENDING_PAYMENT:
        _cancel(uow, order, actor, note=f"payment declined: {code}")
        _give_back_cart(uow, order)
    # The replay's answer is kept in English (a record); the caller reads it in their language.
    problem = PaymentDeclined(
        result.payment.decline_message or DECLINED,
        extra={"decline_code": code, "payment_id": result.payment.id, "order_id": order.public_id},
    )
    if held is not None:
        held.complete(uow, problem.status, problem.as_dict())
    uow.commit()
    raise PaymentDeclined(_(problem.detail), extra=problem.extra)


def _give_back_cart(uow: UnitOfWork, order: Order) -> None:
    """A declined payment leaves the customer's cart as it was, so they can pay another way:
    the cart this order checked out (marked in the order's own transaction, at its `placed_at`)
    opens again, unless the customer has started a new one with the partner since."""
    if _open_cart(uow, order.customer_id, order.partner_id) is not None:
        return
    uow.session.execute(
        update(Cart)
        .where(
            Cart.customer_id == order.customer_id,
            Cart.partner_id == order.partner_id,
            Cart.checked_out.is_(True),
            Cart.updated_at == order.placed_at,
        )
        .values(checked_out=False, updated_at=uow.clock.now())
    )


def _cancel(uow: UnitOfWork, order: Order, actor: Principal, *, note: str) -> None:
    """Cancel in the caller's transaction: unshipped stock and campaign units go back."""
    machine.move(uow, order, S.CANCELLED, actor=checkout.who(actor), note=note, reserved_until=None)
    lines = checkout.lines_of(uow, order)
    checkout.release(uow, checkout.unshipped(lines))
    if order.campaign_id is not None:
        groupbuy.leave(
            uow,
            campaign_id=order.campaign_id,
            customer_id=order.customer_id,
            quantity=sum(line.quantity for line in lines),
        )
    checkout.emit(uow, order, "order.cancelled")


def compensate(uow: UnitOfWork, gateway: PaymentGateway, order_id: str, reason: str) -> None:
    """After a failure past the authorisation: cancel the order if it is still unpaid, then give
    back whatever the bank holds or took for it. A paid order keeps its payment."""
    uow.rollback()
    order = _order(uow, order_id)
    if order.status is S.PENDING_PAYMENT:
        _cancel(uow, order, SYSTEM, note=f"compensated: {reason}")
        uow.commit()
    if order.status is S.CANCELLED:
        release_payments(uow, gateway, order)


def release_payments(uow: UnitOfWork, gateway: PaymentGateway, order: Order) -> list[str]:
    """Void every authorisation and refund every capture made for a cancelled order (found by
    the order's reference on the payments); deterministic keys make it safe to repeat."""
    found, _next = payments.list_payments(
        uow, SYSTEM, payments.PaymentFilters(reference=order.public_id), limit=50
    )
    todo = [(p.public_id, p.status, p.captured_minor - p.refunded_minor) for p in found]
    _end_reads(uow)
    done = []
    for payment_id, status, refundable in todo:
        if status is PaymentStatus.AUTHORISED:
            gateway.void(payment_id, key=checkout.void_key(order, payment_id))
            done.append(payment_id)
        elif status in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED) and refundable:
            gateway.refund(
                payment_id,
                key=checkout.refund_key(order, "cancel", payment_id),
                amount_minor=refundable,
            )
            done.append(payment_id)
    if done:
        _record_refunds(uow, order.public_id)
    return done


def _record_refunds(uow: UnitOfWork, order_id: str) -> None:
    """The order's refunded amount, as the bank's payments for it say."""
    uow.session.expire_all()  # the payments were read before the bank refunded them
    order = _order(uow, order_id)
    found, _next = payments.list_payments(
        uow, SYSTEM, payments.PaymentFilters(reference=order.public_id), limit=50
    )
    refunded = sum(p.refunded_minor for p in found)
    if refunded != order.refunded_minor:
        order.refunded_minor = min(refunded, order.captured_minor)
        order.updated_at = uow.clock.now()
    uow.commit()


# -- jobs ----------------------------------------------------------------------------------------


def expire_reservations(uow: UnitOfWork, gateway: PaymentGateway, *, limit: int = 500) -> list[str]:
    """Cancel pending_payment orders past `reserved_until` (releasing stock and campaign units),
    then void any authorisation made for them; and void authorisations still held for orders
    cancelled earlier (a compensation cut short). The ids of the orders dealt with."""
    now = uow.clock.now()
    due = uow.session.scalars(
        select(Order.public_id)
        .where(Order.status == S.PENDING_PAYMENT, Order.reserved_until <= now)
        .order_by(Order.reserved_until, Order.id)
        .limit(limit)
    ).all()
    handled = []
    for order_id in due:
        order = _order(uow, order_id)
        try:
            _cancel(uow, order, SYSTEM, note="reservation expired")
        except InvalidTransition:  # paid (or cancelled) meanwhile: the order has decided
            uow.rollback()
            continue
        uow.commit()
        release_payments(uow, gateway, order)
        handled.append(order_id)
    held, _next = payments.list_payments(
        uow,
        SYSTEM,
        payments.PaymentFilters(status=PaymentStatus.AUTHORISED, payee_kind=PayeeKind.PARTNER),
        limit=limit,
    )
    references = {p.reference for p in held if p.reference}
    cancelled = uow.session.scalars(
        select(Order.public_id).where(Order.public_id.in_(references), Order.status == S.CANCELLED)
    ).all()
    for order_id in cancelled:
        release_payments(uow, gateway, _order(uow, order_id))
        if order_id not in handled:
            handled.append(order_id)
    _end_reads(uow)
    return handled


@dataclass(slots=True)
class Renewals:
    """What a run of `reauthorise_orders` did, order by order."""

    renewed: list[str] = field(default_factory=list)  # a new authorisation holds the total
    cancelled: list[str] = field(default_factory=list)  # the bank refused: cancelled, voided
    unchanged: list[str] = field(default_factory=list)  # shipped or cancelled meanwhile
    failed: list[tuple[str, str]] = field(default_factory=list)  # (order, error): next run


def renewals_due(uow: UnitOfWork, *, ahead: timedelta, limit: int = 500) -> list[tuple[str, str]]:
    """Orders paid but not yet captured (`paid` or `fulfilling`, nothing shipped, not a group
    buy's, which was captured at checkout) whose authorisation has expired or runs out within
    `ahead`: the bank core releases a hold not captured within 7 days, and the first shipment
    captures from it. Oldest first: (order, the payment whose hold is running out)."""
    horizon = uow.clock.now() + ahead
    due: list[tuple[str, str]] = []
    after = 0
    while len(due) < limit:
        chunk = uow.session.execute(
            select(Order.id, Order.public_id, Order.payment_ref)
            .where(
                Order.status.in_((S.PAID, S.FULFILLING)),
                Order.captured_minor == 0,
                Order.campaign_id.is_(None),
                Order.payment_ref.is_not(None),
                Order.id > after,
            )
            .order_by(Order.id)
            .limit(500)
        ).all()
        if not chunk:
            break
        after = chunk[-1].id
        held = payments.holds(uow, {str(row.payment_ref) for row in chunk})
        for row in chunk:
            hold = held.get(str(row.payment_ref))
            if hold is not None and (
                hold.status is PaymentStatus.EXPIRED
                or (
                    hold.status is PaymentStatus.AUTHORISED
                    and hold.expires_at is not None
                    and hold.expires_at <= horizon
                )
            ):
                due.append((row.public_id, str(row.payment_ref)))
    _end_reads(uow)
    return due[:limit]


def reauthorise_orders(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    *,
    ahead: timedelta,
    limit: int = 500,
    progress: Callable[[str], None] | None = None,
) -> Renewals:
    """Renew the authorisation of every order `renewals_due` finds, one order at a time: the
    bank holds the total again (key `shop:<order>:reauthorise:<old payment>`, so a rerun after a
    crash gets the bank's first answer), the order points at the new payment and the old hold is
    voided; if the bank refuses, the order is cancelled (stock back, `order.cancelled`) with the
    bank's reason in its history for the customer, and the old hold voided. Safe to run again:
    an order renewed no longer falls due, and one that changed meanwhile is left as it is."""
    done = Renewals()
    for order_id, running_out in renewals_due(uow, ahead=ahead, limit=limit):
        try:
            outcome = _reauthorise(uow, gateway, order_id, running_out)
        except Problem as problem:
            uow.rollback()
            done.failed.append((order_id, str(problem.detail)))
        except Exception as error:  # the bank unreachable, a deadlock there: the next run retries
            uow.rollback()
            done.failed.append((order_id, f"{type(error).__name__}: {error}"[:300]))
        else:
            getattr(done, outcome).append(order_id)
        if progress is not None:
            progress(order_id)
    return done


def _reauthorise(uow: UnitOfWork, gateway: PaymentGateway, order_id: str, running_out: str) -> str:
    """One order's renewal, under a claim of its key (`idempotency.claim`): two runs at once
    never ask the bank together for the same order (the second finds it in flight and leaves
    it); a run that dies leaves the claim to lapse after `_RENEWAL_LEASE`, and the next run asks
    the bank again with the same key, which answers the first hold."""
    order = _order(uow, order_id)
    old = order.payment_ref
    if (
        order.status not in (S.PAID, S.FULFILLING)
        or order.captured_minor
        or old is None
        or old != running_out  # renewed by another run since this one listed it
    ):
        _end_reads(uow)
        return "unchanged"
    request = _authorise_request(uow, order, order.total_minor, "re-authorised")
    key = checkout.reauthorise_key(order, old)
    try:
        claimed = idempotency.claim(
            uow,
            scope="shop-reauthorise",
            key=key,
            fingerprint=old,
            lock_seconds=int(_RENEWAL_LEASE.total_seconds()),
        )
    except IdempotencyInFlight:  # another run is renewing this order now
        return "unchanged"
    if isinstance(claimed, idempotency.Replay):  # renewed (or cancelled) by an earlier run
        return "unchanged"
    try:
        held = gateway.authorise(request, key=key, actor=_JOB_RENEW)
        outcome, new = _renewed(uow, order_id, old, held)
        claimed.complete(uow, 200, {"outcome": outcome, "payment_id": new})
        uow.commit()
    except BaseException:
        uow.rollback()
        idempotency.release(uow, claimed)
        raise
    if outcome == "cancelled":
        release_payments(uow, gateway, order)  # the old hold, if the bank still has it
    elif outcome == "renewed" and new is not None:
        _void_replaced(uow, gateway, order_id, old, new)
    elif new is not None:  # shipped or cancelled meanwhile: the new hold is not needed
        gateway.void(new, key=checkout.void_key(order, new), actor=_JOB_RENEW)
    return outcome


def _renewed(
    uow: UnitOfWork, order_id: str, old: str, held: PaymentResult
) -> tuple[str, str | None]:
    """Record the bank's answer in the caller's transaction (not committed): the order points at
    the new hold, or is cancelled with the bank's reason; unless it was shipped or cancelled
    meanwhile. The outcome, and the new payment if the bank approved."""
    order = _order(uow, order_id)
    new = held.payment.id if held.approved else None
    waiting = (
        order.status in (S.PAID, S.FULFILLING)
        and order.payment_ref == old
        and order.captured_minor == 0
    )
    if not waiting:
        return "unchanged", new
    if new is None:
        code = held.decline_code.value if held.decline_code else "declined"
        _cancel(uow, order, _JOB_RENEW, note=f"{REAUTHORISATION_DECLINED}: {code}")
        _audit_renewal(uow, order, old, None, code)
        return "cancelled", None
    swapped = uow.session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.payment_ref == old,
            Order.captured_minor == 0,
            Order.status.in_((S.PAID, S.FULFILLING)),
        )
        .values(payment_ref=new, updated_at=uow.clock.now())
        .execution_options(synchronize_session=False)
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        return "unchanged", new  # changed between the read and the update
    uow.session.add(
        OrderEvent(
            order_id=order.id,
            from_status=order.status.value,
            to_status=order.status.value,
            at=uow.clock.now(),
            actor=_JOB_RENEW.public_id,
            note=f"{REAUTHORISED}: {new}",
        )
    )
    _audit_renewal(uow, order, old, new, None)
    return "renewed", new


def _void_replaced(
    uow: UnitOfWork, gateway: PaymentGateway, order_id: str, old: str, new: str
) -> None:
    """Release the replaced hold. If a shipment captured from it meanwhile (it read the order
    before the swap), the order goes back to that payment and the new hold is released."""
    order = _order(uow, order_id)
    _end_reads(uow)
    try:
        gateway.void(old, key=checkout.void_key(order, old), actor=_JOB_RENEW)
    except InvalidTransition as refused:
        if refused.extra.get("current_status") != PaymentStatus.CAPTURED.value:
            return  # expired or voided already: nothing is held
        uow.session.execute(
            update(Order)
            .where(Order.id == order.id, Order.payment_ref == new)
            .values(payment_ref=old, updated_at=uow.clock.now())
            .execution_options(synchronize_session=False)
        )
        uow.commit()
        gateway.void(new, key=checkout.void_key(order, new), actor=_JOB_RENEW)


def _audit_renewal(
    uow: UnitOfWork, order: Order, old: str, new: str | None, declined: str | None
) -> None:
    audit.record(
        uow.session,
        actor=_JOB_RENEW,
        at=uow.clock.now(),
        action="shop.order.reauthorised" if new else "shop.order.reauthorisation_declined",
        object_type="order",
        object_id=order.public_id,
        before={"payment_ref": old},
        after={"payment_ref": new} if new else {"status": S.CANCELLED.value, "decline": declined},
    )


def complete_orders(uow: UnitOfWork, *, limit: int = 500) -> list[str]:
    """Delivered orders whose return window has ended become completed, and the bank's commission
    on each accrues (posted once: a unique ledger key per order). The ids completed."""
    now = uow.clock.now()
    due = uow.session.scalars(
        select(Order.public_id)
        .where(Order.status == S.DELIVERED, Order.return_window_ends_at <= now)
        .order_by(Order.return_window_ends_at, Order.id)
        .limit(limit)
    ).all()
    done = []
    for order_id in due:
        order = _order(uow, order_id)
        try:
            machine.move(uow, order, S.COMPLETED, actor=_JOB_COMPLETE.public_id)
        except InvalidTransition:
            uow.rollback()
            continue
        order.commission_minor = _accrue(uow, order)
        checkout.emit(uow, order, "order.completed")
        uow.commit()
        done.append(order_id)
    return done


def commission_rate(uow: UnitOfWork, partner: Partner, currency: str, at: datetime) -> int:
    """The shop rate in force for the partner's commission contract in the currency (bps);
    0 without a contract. A `shop.order` category override wins over the base share."""
    return postings.commission_rate(uow, partner, currency, at, SHOP_SALES_CATEGORY)


def premium_returned(order: Order, order_lines: Sequence[OrderLine]) -> int:
    """The part of the order's protection premium that covered the units returned so far (it goes
    back to the customer with them); the rest covers the units kept."""
    return crosssell.protection_share(
        order.protection_minor,
        [(line.unit_minor, line.quantity, line.returned_quantity) for line in order_lines],
    )


def commission_base(
    order: Order, order_lines: Sequence[OrderLine], *, refunded_minor: int | None = None
) -> int:
    """What the partner sold and the customer kept: captured, less refunds (`refunded_minor`, by
    default the order's), less the insurer's premium on the units kept."""
    refunded = order.refunded_minor if refunded_minor is None else refunded_minor
    premium_kept = order.protection_minor - premium_returned(order, order_lines)
    return max(order.captured_minor - refunded - premium_kept, 0)


def _accrue(uow: UnitOfWork, order: Order) -> int:
    """The retailer's commission on what the customer kept, and the premium on the units kept
    passed to the insurer with the bank's commission on it."""
    partner = uow.session.get_one(Partner, order.partner_id)
    rate = commission_rate(uow, partner, order.currency, uow.clock.now())
    amount = bps_of(commission_base(order, checkout.lines_of(uow, order)), rate)
    if amount:
        _post_commission(uow, order, partner, amount, clawback=False)
    if order.protection_minor:
        protection.pass_premium(uow, _JOB_COMPLETE, order, partner)
    return amount


def _post_commission(
    uow: UnitOfWork, order: Order, partner: Partner, amount: int, *, clawback: bool
) -> None:
    """The partner's payable → the bank's commission revenue (reversed for a clawback)."""
    postings.commission(
        uow,
        scope="shop",
        order_ref=order.public_id,
        party_ref=partner.public_id,
        money=Money(amount, order.currency),
        category=SHOP_SALES_CATEGORY,
        clawback=clawback,
    )


# -- reading orders ------------------------------------------------------------------------------


def _order(uow: UnitOfWork, public_id: str) -> Order:
    order = uow.session.scalars(
        select(Order).where(Order.public_id == public_id).execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise NotFound(_("No order %(public_id)r here.", public_id=public_id))
    return order


def customer_order(uow: UnitOfWork, actor: Principal, public_id: str) -> Order:
    """The customer's own order; anyone else's answers 404."""
    customer_id = customer_of(actor)
    order = _order(uow, public_id)
    if order.customer_id != customer_id:
        raise NotFound(_("No order %(public_id)r here.", public_id=public_id))
    return order


def partner_order(uow: UnitOfWork, actor: Principal, public_id: str) -> Order:
    """An order placed with the actor's partner (the bank's staff see every partner's)."""
    partner_side(actor)
    order = _order(uow, public_id)
    ensure_partner_visible(actor, order.partner_id, "order", public_id)
    return order


def list_customer_orders(
    uow: UnitOfWork, actor: Principal, *, cursor: str | None, limit: int
) -> tuple[Sequence[Order], str | None]:
    customer_id = customer_of(actor)
    stmt = select(Order).where(Order.customer_id == customer_id)
    return paginate(uow.session, stmt, Order.id, cursor=cursor, limit=limit, descending=True)


def list_partner_orders(
    uow: UnitOfWork,
    actor: Principal,
    *,
    status: OrderStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Order], str | None]:
    partner_side(actor)
    if actor.merchant_id is not None:
        raise Forbidden(_("Orders belong to the shop's partners."))
    stmt = select(Order)
    if actor.partner_id is not None:
        stmt = stmt.where(Order.partner_id == actor.partner_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return paginate(uow.session, stmt, Order.id, cursor=cursor, limit=limit, descending=True)


def shipments_of(uow: UnitOfWork, order: Order) -> list[Shipment]:
    return list(
        uow.session.scalars(
            select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)
        )
    )


# -- the customer moves an order -----------------------------------------------------------------


def cancel(uow: UnitOfWork, gateway: PaymentGateway, actor: Principal, order_id: str) -> Order:
    """The customer cancels before shipment: stock back, the authorisation voided (a group buy's
    capture refunded)."""
    order = customer_order(uow, actor, order_id)
    _cancel(uow, order, actor, note="cancelled by the customer")
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="order.cancelled",
        object_type="order",
        object_id=order.public_id,
    )
    uow.commit()
    release_payments(uow, gateway, order)
    return _order(uow, order_id)


def request_return(uow: UnitOfWork, actor: Principal, order_id: str, reason: str) -> Order:
    """Within the partner's return window after delivery."""
    order = customer_order(uow, actor, order_id)
    machine.check(order, S.RETURN_REQUESTED)
    ends = order.return_window_ends_at
    if ends is not None and uow.clock.now() > ends:
        raise Conflict(
            _(
                "The return window for order %(public_id)s ended at %(ends)s.",
                public_id=order.public_id,
                ends=ends.isoformat(),
            ),
            extra={"return_window_ends_at": ends.isoformat()},
        )
    machine.move(uow, order, S.RETURN_REQUESTED, actor=checkout.who(actor), note=reason or None)
    checkout.emit(uow, order, "order.return_requested")
    uow.commit()
    return order


# -- the partner moves an order ------------------------------------------------------------------


def _partner_change(
    uow: UnitOfWork, actor: Principal, order: Order, action: str, **after: Any
) -> None:
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="order",
        object_id=order.public_id,
        after={"status": order.status.value, **after},
    )


def fulfil(uow: UnitOfWork, actor: Principal, order_id: str) -> Order:
    order = partner_order(uow, actor, order_id)
    machine.move(uow, order, S.FULFILLING, actor=checkout.who(actor))
    _partner_change(uow, actor, order, "order.fulfilling")
    uow.commit()
    return order


@dataclass(frozen=True, slots=True)
class ShipLine:
    sku: str
    quantity: int


def ship(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    actor: Principal,
    order_id: str,
    *,
    lines: Sequence[ShipLine] = (),
    carrier: str | None = None,
    tracking: str | None = None,
) -> Shipment:
    """Send all or some of the order's units; the shipment captures its share of the payment.

    The bank core captures an authorisation once (the rest of the hold is released), so the
    first shipment captures its lines (and the protection premium) from the order's
    authorisation, and each later one is paid by an authorisation and capture of its own
    (declined: nothing ships). The last shipment takes exactly what is left of the total.
    """
    order = partner_order(uow, actor, order_id)
    if order.status is not S.FULFILLING:
        raise machine.refuse(order.status, S.SHIPPED, order.public_id)
    order_lines = checkout.lines_of(uow, order)
    sending = _units_by_product(
        uow,
        order_lines,
        lines,
        room=lambda line: line.quantity - line.shipped_quantity,
        refusal=_("The shipment does not match the order."),
    )
    if not lines:
        sending = {k: v for k, v in checkout.unshipped(order_lines).items() if v > 0}
    unit = {line.product_id: line.unit_minor for line in order_lines}
    everything = all(
        line.shipped_quantity + sending.get(line.product_id, 0) == line.quantity
        for line in order_lines
    )
    number = len(shipments_of(uow, order)) + 1
    amount = 0
    if order.campaign_id is None:
        amount = sum(unit[p] * q for p, q in sending.items())
        if number == 1:
            amount += order.protection_minor
        if everything:
            amount = order.total_minor - order.captured_minor
    if number == 1 and order.protection_minor:
        protection.issuer(uow, order)  # before the premium is captured, not after
    captured_before = order.captured_minor
    payment_ref = order.payment_ref
    follow_on = _follow_on_request(uow, order, amount, number) if number > 1 and amount else None
    _end_reads(uow)
    paid_by = _capture_share(gateway, actor, order, payment_ref, follow_on, amount, number)
    try:
        return _record_shipment(
            uow, actor, order_id, sending, amount, captured_before, carrier, tracking, everything
        )
    except Exception:
        uow.rollback()
        if paid_by is not None:
            gateway.refund(
                paid_by,
                key=checkout.shipment_key(order, number, "refund"),
                amount_minor=amount,
            )
        raise


def ship_once(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    actor: Principal,
    order_id: str,
    *,
    key: str,
    fingerprint: str,
    lock_seconds: int,
    lines: Sequence[ShipLine] = (),
    carrier: str | None = None,
    tracking: str | None = None,
) -> tuple[str, bool]:
    """`ship`, once per `Idempotency-Key`: a retried request answers the first one's shipment
    instead of shipping (and capturing) again. The shipment's id, and whether it was replayed."""
    claimed = idempotency.claim(
        uow,
        scope=f"shop-shipment:{actor.public_id}",
        key=key,
        fingerprint=fingerprint,
        lock_seconds=lock_seconds,
    )
    if isinstance(claimed, idempotency.Replay):
        return str(claimed.response["shipment_id"]), True
    try:
        shipment = ship(
            uow, gateway, actor, order_id, lines=lines, carrier=carrier, tracking=tracking
        )
    except BaseException:
        uow.rollback()
        idempotency.release(uow, claimed)
        raise
    claimed.complete(uow, 201, {"shipment_id": shipment.public_id})
    uow.commit()
    return shipment.public_id, False


def _follow_on_request(uow: UnitOfWork, order: Order, amount: int, number: int) -> AuthoriseRequest:
    return _authorise_request(uow, order, amount, f"shipment {number}")


def _capture_share(
    gateway: PaymentGateway,
    actor: Principal,
    order: Order,
    payment_ref: str | None,
    follow_on: AuthoriseRequest | None,
    amount: int,
    number: int,
) -> str | None:
    """Capture the shipment's share; the payment it was taken from (None: nothing to take)."""
    if amount == 0:
        return None
    if follow_on is None:
        assert payment_ref is not None
        gateway.capture(
            payment_ref,
            key=checkout.shipment_key(order, number, "capture"),
            amount_minor=amount,
            actor=actor,
        )
        return payment_ref
    held = gateway.authorise(
        follow_on, key=checkout.shipment_key(order, number, "authorise"), actor=actor
    )
    if not held.approved:
        raise PaymentDeclined(
            _("The bank declined the payment for this shipment: do not send it."),
            extra={
                "decline_code": held.decline_code.value if held.decline_code else None,
                "payment_id": held.payment.id,
                "order_id": order.public_id,
            },
        )
    gateway.capture(
        held.payment.id, key=checkout.shipment_key(order, number, "capture"), actor=actor
    )
    return held.payment.id


def _record_shipment(
    uow: UnitOfWork,
    actor: Principal,
    order_id: str,
    sending: dict[int, int],
    amount: int,
    captured_before: int,
    carrier: str | None,
    tracking: str | None,
    everything: bool,
) -> Shipment:
    order = _order(uow, order_id)
    moved = uow.session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == S.FULFILLING,
            Order.captured_minor == captured_before,
        )
        .values(captured_minor=Order.captured_minor + amount, updated_at=uow.clock.now())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        uow.session.refresh(order)
        raise Conflict(
            _(
                "Order %(public_id)s changed while this shipment was paid for; try again.",
                public_id=order.public_id,
            ),
            extra={"current_status": order.status.value},
        )
    order_lines = checkout.lines_of(uow, order)
    sku_of = checkout.skus(uow, order_lines)
    for product_id, quantity in sending.items():
        shipped = uow.session.execute(
            update(OrderLine)
            .where(
                OrderLine.order_id == order.id,
                OrderLine.product_id == product_id,
                OrderLine.shipped_quantity + quantity <= OrderLine.quantity,
            )
            .values(shipped_quantity=OrderLine.shipped_quantity + quantity)
            .execution_options(synchronize_session=False)
        )
        if shipped.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(_("More of %(sku)s than is left to ship.", sku=sku_of[product_id]))
    checkout.consume(uow, sending)
    shipment = Shipment(
        public_id=new_public_id("shp"),
        order_id=order.id,
        lines=[{"product": sku_of[p], "quantity": q} for p, q in sorted(sending.items())],
        amount_minor=amount,
        carrier=carrier,
        tracking=tracking,
        shipped_at=uow.clock.now(),
    )
    uow.session.add(shipment)
    uow.session.flush()
    uow.session.refresh(order)
    if order.protection_minor and protection.policy_of(uow, order) is None:
        protection.issue(uow, actor, order)  # its premium is captured now (or was, a group buy's)
    if everything:
        machine.move(uow, order, S.SHIPPED, actor=checkout.who(actor), note=shipment.public_id)
    for line in order_lines:
        uow.session.refresh(line)
    checkout.emit(uow, order, "order.shipped")
    _partner_change(uow, actor, order, "order.shipped", shipment=shipment.public_id, amount=amount)
    uow.commit()
    return shipment


def deliver(uow: UnitOfWork, actor: Principal, order_id: str) -> Order:
    """Delivered: the partner's return window starts now. Only a shipped order: `returned →
    delivered` ends a partial return (`confirm_returned`) and is not the partner's to ask for."""
    order = partner_order(uow, actor, order_id)
    if not machine.partner_may(order.status, S.DELIVERED):
        raise machine.refuse(order.status, S.DELIVERED, order.public_id)
    partner = uow.session.get_one(Partner, order.partner_id)
    ends = uow.clock.now() + timedelta(days=partner.return_window_days)
    machine.move(uow, order, S.DELIVERED, actor=checkout.who(actor), return_window_ends_at=ends)
    checkout.emit(uow, order, "order.delivered")
    _partner_change(uow, actor, order, "order.delivered")
    uow.commit()
    return order


def confirm_returned(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    actor: Principal,
    order_id: str,
    *,
    lines: Sequence[ShipLine] = (),
) -> Order:
    """The goods are back: returned (stock on hand again, the commission and the premium on them
    dealt with, see `_take_back`), refunded through the gateway, then `refunded`; or, when part
    of an order not yet completed came back, `delivered` again: the kept units complete after
    the return window, accruing commission on what was kept. Calling it again on a `returned`
    order retries the refund with the same keys."""
    order = partner_order(uow, actor, order_id)
    if order.status is not S.RETURNED:
        _take_back(uow, actor, order, lines)
    refund = _refund_due(order, checkout.lines_of(uow, order), closed_refunds(uow, order))
    which = _return_name(uow, order)
    found, _next = payments.list_payments(
        uow, SYSTEM, payments.PaymentFilters(reference=order.public_id), limit=50
    )
    sources = [(p.public_id, p.captured_minor - p.refunded_minor) for p in found]
    _end_reads(uow)
    left = refund
    for payment_id, refundable in sources:  # newest first
        take = min(left, refundable)
        if take > 0:
            gateway.refund(
                payment_id,
                key=checkout.refund_key(order, which, payment_id),
                amount_minor=take,
                actor=actor,
            )
            left -= take
    order = _order(uow, order_id)
    kept = any(line.returned_quantity < line.quantity for line in checkout.lines_of(uow, order))
    # Not completed yet (no commission accrued): the kept units go back to waiting for the window.
    partly = kept and order.commission_minor is None
    machine.move(
        uow,
        order,
        S.DELIVERED if partly else S.REFUNDED,
        actor=checkout.who(actor),
        note=PARTLY_RETURNED if partly else None,
        refunded_minor=order.refunded_minor + refund,
    )
    checkout.emit(uow, order, "order.refunded")
    _partner_change(uow, actor, order, "order.refunded", refunded_minor=refund)
    uow.commit()
    return order


def _return_name(uow: UnitOfWork, order: Order) -> str:
    """This return's part of its refunds' keys: `return` for the order's first (as before partial
    returns could be followed by another), `return-<n>` for the n-th, so a second return is a new
    refund and a retried one replays its own."""
    number = uow.session.scalar(
        select(func.count()).where(
            OrderEvent.order_id == order.id, OrderEvent.to_status == S.RETURNED.value
        )
    )
    return "return" if (number or 1) <= 1 else f"return-{number}"


def _units_by_product(
    uow: UnitOfWork,
    order_lines: Sequence[OrderLine],
    asked: Sequence[ShipLine],
    *,
    room: Callable[[OrderLine], int],
    refusal: str,
) -> dict[int, int]:
    """The units asked for per product, each within what its order line has room for (units not
    yet shipped, or shipped and not yet returned); every line that does not fit is named."""
    sku_of = checkout.skus(uow, order_lines)
    by_sku = {sku_of[line.product_id]: line for line in order_lines}
    units: dict[int, int] = {}
    errors = []
    for index, item in enumerate(asked):
        line = by_sku.get(item.sku)
        left = room(line) if line else 0
        if line is None:
            errors.append(FieldError(f"body.lines.{index}.sku", _("not a line of this order")))
        elif not 0 < item.quantity <= left:
            errors.append(
                FieldError(
                    f"body.lines.{index}.quantity", _("must be within 1..%(left)s", left=left)
                )
            )
        else:
            units[line.product_id] = units.get(line.product_id, 0) + item.quantity
    if errors:
        raise InvalidInput(refusal, errors=errors)
    return units


def _take_back(uow: UnitOfWork, actor: Principal, order: Order, lines: Sequence[ShipLine]) -> None:
    """The goods are back, in one transaction: the order `returned`, the units on hand again, a
    completed order's commission clawed back for what came back, and the protection premium of
    the units returned taken off the policy (all units back: the policy cancelled)."""
    machine.check(order, S.RETURNED)
    order_lines = checkout.lines_of(uow, order)
    back = _units_by_product(
        uow,
        order_lines,
        lines,
        room=lambda line: line.shipped_quantity - line.returned_quantity,
        refusal=_("The return does not match what was shipped."),
    )
    if not lines:
        back = {
            line.product_id: line.shipped_quantity - line.returned_quantity for line in order_lines
        }
    base_before = commission_base(order, order_lines)
    machine.move(uow, order, S.RETURNED, actor=checkout.who(actor))
    for line in order_lines:
        line.returned_quantity += back.get(line.product_id, 0)
    checkout.restock(uow, back)
    uow.session.flush()
    refunded_after = order.refunded_minor + _refund_due(
        order, order_lines, closed_refunds(uow, order)
    )
    if order.commission_minor:
        base_after = commission_base(order, order_lines, refunded_minor=refunded_after)
        _claw_back(uow, order, base_before, base_after)
    if order.protection_minor:
        retailer = uow.session.get_one(Partner, order.partner_id)
        kept = order.protection_minor - premium_returned(order, order_lines)
        if kept:
            protection.cover_kept(uow, actor, order, retailer, kept)
        else:  # everything came back, the premium with it (`_refund_due`)
            protection.cancel(uow, actor, order, retailer)
    checkout.emit(uow, order, "order.returned")
    _partner_change(uow, actor, order, "order.returned")
    uow.commit()


@dataclass(frozen=True, slots=True)
class ClosedRefunds:
    """What the close of an order's campaign gives back on it (nothing for an order of no closed
    campaign): its refund rows, those already sent (part of the order's `refunded_minor`), and,
    when the campaign succeeded, the price difference per unit of the campaign's product."""

    owed_minor: int = 0  # sent or still pending: the order's share of the close, in any case
    done_minor: int = 0
    product_id: int | None = None
    final_unit_minor: int | None = None

    def on_returned(self, order_lines: Sequence[OrderLine]) -> int:
        """The price difference the close refunded on the units returned so far: it covered the
        units not returned before it (its refund over the difference per unit), so units returned
        before the close, refunded then at the price paid, have none."""
        if self.final_unit_minor is None:
            return 0
        total = 0
        for line in order_lines:
            per_unit = pricing.difference_refund(1, line.unit_minor, self.final_unit_minor)
            if line.product_id != self.product_id or not per_unit:
                continue
            before_close = line.quantity - self.owed_minor // per_unit
            after_close = max(line.returned_quantity - before_close, 0)
            total += after_close * per_unit
        return total


def closed_refunds(uow: UnitOfWork, order: Order) -> ClosedRefunds:
    """The group-buy close's refunds on the order (`ClosedRefunds`)."""
    if order.campaign_id is None:
        return ClosedRefunds()
    rows = uow.session.execute(
        select(CampaignRefund.amount_minor, CampaignRefund.done_at).where(
            CampaignRefund.order_id == order.id
        )
    ).all()
    if not rows:  # not closed yet, or closed without this order
        return ClosedRefunds()
    campaign = uow.session.get_one(GroupBuy, order.campaign_id)
    succeeded = campaign.status is CampaignStatus.SUCCEEDED
    return ClosedRefunds(
        owed_minor=sum(amount for amount, _done in rows),
        done_minor=sum(amount for amount, done in rows if done is not None),
        product_id=campaign.product_id,
        final_unit_minor=campaign.final_unit_minor if succeeded else None,
    )


def _refund_due(order: Order, order_lines: Sequence[OrderLine], closed: ClosedRefunds) -> int:
    """The units returned so far, at what the customer paid for them (their price less the
    group-buy close's price difference on them) and with their share of the protection premium
    (everything the close did not give back when all came back), less what returns already
    refunded; never more than is left to refund once the close's refunds are made."""
    all_back = all(line.returned_quantity == line.quantity for line in order_lines)
    refundable = order.captured_minor - closed.owed_minor
    value = sum(line.returned_quantity * line.unit_minor for line in order_lines)
    paid = value - closed.on_returned(order_lines)
    due = refundable if all_back else paid + premium_returned(order, order_lines)
    returns_refunded = order.refunded_minor - closed.done_minor
    return max(min(due, refundable) - returns_refunded, 0)


def _claw_back(uow: UnitOfWork, order: Order, base_before: int, base_after: int) -> None:
    """Commission back pro rata to what its base lost with this return:
    `floor(commission × (base before − base after) / base before)`. The base is what the customer
    kept (`commission_base`), so units returned before completion, on which no commission
    accrued, are not clawed back again."""
    accrued = order.commission_minor or 0
    lost = max(base_before - base_after, 0)
    amount = min(pro_rata(accrued, lost, base_before), accrued) if base_before else 0
    if amount:
        partner = uow.session.get_one(Partner, order.partner_id)
        _post_commission(uow, order, partner, amount, clawback=True)
        order.commission_minor = accrued - amount


def order_events(uow: UnitOfWork, order: Order) -> list[OrderEvent]:
    return list(
        uow.session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    )


def count_orders(uow: UnitOfWork, status: OrderStatus) -> int:
    return int(uow.session.scalar(select(func.count()).where(Order.status == status)) or 0)
