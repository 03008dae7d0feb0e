"""Carts, checkout and orders under `/shop`: the customer's cart, checkout and orders, and the
partner's view of the orders placed with it. Thin: parse, authorise, call the service, shape.

No database transaction of the request is open while the payment gateway runs: the service ends
its transactions before each call to the bank.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from beyondbank.commerce import service as commerce
from beyondbank.commerce.models import Order, OrderStatus
from beyondbank.commerce.orders import checkout, schemas, service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.errors import Problem, invalid
from beyondbank.core.http import is_json, problem_response, read_body, replay_body
from beyondbank.core.i18n import _
from beyondbank.core.idempotency import check_key, fingerprint
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.tokens import read_access_token
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import (
    IdempotencyKey,
    SettingsDep,
    UoW,
    get_principal,
    get_settings,
    requires,
)
from beyondbank.identity import service as identity
from beyondbank.payments.api import Gateway, bank_core, gateway

router = APIRouter(prefix="/shop", tags=["shop: carts, checkout and orders"])

Buyer = Annotated[Principal, Depends(requires(Permission.ORDERS_CREATE))]
Reader = Annotated[Principal, Depends(requires(Permission.ORDERS_READ))]
Fulfiller = Annotated[Principal, Depends(requires(Permission.ORDERS_FULFIL))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_ORDER_PROBLEMS: dict[int | str, dict[str, object]] = {
    402: {"description": "The bank declined the payment (`decline_code`)"},
    404: {"description": "No such order, or another customer's or partner's"},
    409: {"description": "Not allowed in the order's state (`current_status`); sold out"},
    422: {"description": "Invalid fields"},
}


# -- views ---------------------------------------------------------------------------------------


def _lines(uow: UnitOfWork, order: Order, *, public: bool) -> list[schemas.OrderLineOut]:
    lines = checkout.lines_of(uow, order)
    sku = checkout.skus(uow, lines)
    return [
        schemas.OrderLineOut(
            sku=sku[line.product_id],
            quantity=line.quantity,
            unit_minor=line.unit_minor,
            public_unit_minor=line.public_unit_minor if public else None,
            shipped_quantity=line.shipped_quantity,
            returned_quantity=line.returned_quantity,
        )
        for line in lines
    ]


def _shipments(uow: UnitOfWork, order: Order) -> list[schemas.ShipmentOut]:
    return [
        schemas.ShipmentOut(
            shipment_id=s.public_id,
            lines=s.lines,
            amount_minor=s.amount_minor,
            carrier=s.carrier,
            tracking=s.tracking,
            shipped_at=s.shipped_at,
        )
        for s in service.shipments_of(uow, order)
    ]


def order_out(
    uow: UnitOfWork, order: Order, placed: service.Placed | None = None
) -> schemas.OrderOut:
    """`placed`: an order this request just wrote and paid (its partner, lines, no shipments
    yet), answered without reading it again."""
    if placed is not None:
        partner_ref = placed.partner_ref
        lines = [
            schemas.OrderLineOut(
                sku=placed.sku[line.product_id],
                quantity=line.quantity,
                unit_minor=line.unit_minor,
                public_unit_minor=line.public_unit_minor,
                shipped_quantity=line.shipped_quantity,
                returned_quantity=line.returned_quantity,
            )
            for line in placed.lines
        ]
        shipments: list[schemas.ShipmentOut] = []
    else:
        partner_ref = commerce.partner_public_ids(uow, {order.partner_id})[order.partner_id]
        lines = _lines(uow, order, public=True)
        shipments = _shipments(uow, order)
    plan = (
        [schemas.InstalmentOut(**i) for i in order.instalment_plan]
        if order.instalment_plan
        else None
    )
    return schemas.OrderOut(
        order_id=order.public_id,
        partner_id=partner_ref,
        status=order.status,
        currency=order.currency,
        goods_minor=order.goods_minor,
        saving_minor=order.saving_minor,
        protection_minor=order.protection_minor,
        protection_policy_ref=order.protection_policy_ref,
        total_minor=order.total_minor,
        captured_minor=order.captured_minor,
        refunded_minor=order.refunded_minor,
        instalment_months=order.instalment_months,
        instalment_plan=plan,
        shipping_address=order.shipping_address,
        placed_at=order.placed_at,
        reserved_until=order.reserved_until,
        return_window_ends_at=order.return_window_ends_at,
        lines=lines,
        shipments=shipments,
    )


def partner_order_out(uow: UnitOfWork, order: Order) -> schemas.PartnerOrderOut:
    return schemas.PartnerOrderOut(
        order_id=order.public_id,
        status=order.status,
        currency=order.currency,
        goods_minor=order.goods_minor,
        protection_minor=order.protection_minor,
        total_minor=order.total_minor,
        captured_minor=order.captured_minor,
        refunded_minor=order.refunded_minor,
        shipping_address=order.shipping_address if order.address_consent_at else None,
        placed_at=order.placed_at,
        return_window_ends_at=order.return_window_ends_at,
        lines=_lines(uow, order, public=False),
        shipments=_shipments(uow, order),
    )


def _cart_out(view: service.CartView) -> schemas.CartOut:
    return schemas.CartOut(
        cart_id=view.cart_id,
        partner_id=view.partner_id,
        currency=view.currency,
        goods_minor=view.goods_minor,
        lines=[
            schemas.CartLineOut(
                product_id=line.product_id,
                sku=line.sku,
                title=line.title,
                quantity=line.quantity,
                unit_minor=line.unit_minor,
                public_unit_minor=line.public_unit_minor,
                campaign_id=line.campaign_id,
            )
            for line in view.lines
        ],
    )


# -- the customer's cart -------------------------------------------------------------------------


@router.get("/cart", response_model=list[schemas.CartOut], summary="Your carts, one per partner")
def get_carts(uow: UoW, actor: Buyer) -> list[schemas.CartOut]:
    return [_cart_out(view) for view in service.carts(uow, actor)]


@router.post(
    "/cart/items",
    response_model=list[schemas.CartOut],
    status_code=201,
    summary="Add a product to your cart with its partner",
)
def add_item(body: schemas.CartItemIn, uow: UoW, actor: Buyer) -> list[schemas.CartOut]:
    service.add_item(
        uow,
        actor,
        product_id=body.product_id,
        quantity=body.quantity,
        campaign_id=body.campaign_id,
    )
    return [_cart_out(view) for view in service.carts(uow, actor)]


@router.delete(
    "/cart/items/{product_id}", status_code=204, summary="Take a product out of your cart"
)
def remove_item(product_id: str, uow: UoW, actor: Buyer) -> Response:
    service.remove_item(uow, actor, product_id)
    return Response(status_code=204)


# -- checkout ------------------------------------------------------------------------------------


async def _buyer(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """`Buyer` (the signed-in principal, allowed to order) in one hop to the thread pool, where
    `requires` and its own dependencies take four."""
    return await run_in_threadpool(_allowed, request, authorization, Permission.ORDERS_CREATE)


def _allowed(request: Request, authorization: str | None, permission: Permission) -> Principal:
    settings = get_settings(request)
    with UnitOfWork(request.app.state.session_factory, request.app.state.clock) as uow:
        return requires(permission)(get_principal(uow, settings, authorization))


@router.get(
    "/checkout/offers",
    response_model=schemas.OffersOut,
    summary="The bank's offers for your cart: 0% instalments and device protection",
)
def get_offers(
    uow: UoW, actor: Buyer, partner_id: Annotated[str, Query(min_length=1, max_length=40)]
) -> schemas.OffersOut:
    offers = service.offers(uow, actor, partner_id)
    return schemas.OffersOut(
        partner_id=offers.partner_id,
        currency=offers.currency,
        goods_minor=offers.goods_minor,
        device_protection_minor=offers.protection_minor,
        insurer=offers.insurer,
        instalment_plans=[
            schemas.InstalmentPlanOut(
                months=months,
                instalments=[
                    schemas.InstalmentOut(due=i.due, amount_minor=i.amount_minor) for i in plan
                ],
            )
            for months, plan in offers.instalments.items()
        ],
    )


@router.post(
    "/checkout",
    response_model=schemas.OrderOut,
    status_code=201,
    summary="Place and pay an order for your cart with one partner (Idempotency-Key required)",
    responses=_ORDER_PROBLEMS,
)
async def post_checkout(
    request: Request,
    body: schemas.CheckoutIn,
    actor: Annotated[Principal, Depends(_buyer)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Its blocking work runs in one call on a worker thread (and the principal in one before
    it), where a plain endpoint and its dependencies take a hop between the event loop and the
    thread pool each: ten a checkout, a good part of the request's own cost. A well-formed
    checkout is usually answered before it gets here, by `CheckoutEdge`, with the same code."""
    return await run_in_threadpool(_checkout, request, body, actor, idempotency_key)


def _checkout(
    request: Request,
    body: schemas.CheckoutIn,
    actor: Principal,
    idempotency_key: str | None,
) -> Response:
    settings = get_settings(request)
    with UnitOfWork(request.app.state.session_factory, request.app.state.clock) as uow:
        bank = gateway(request, bank_core(request, settings))
        if idempotency_key is None:
            raise invalid("header.Idempotency-Key", _("required: a unique key per checkout"))
        key = check_key(idempotency_key)
        data = service.CheckoutIn(
            partner_id=body.partner_id,
            shipping_address=body.shipping_address.model_dump(exclude_none=True),
            share_address_with_partner=body.share_address_with_partner,
            instalment_months=body.instalment_months,
            device_protection=body.device_protection,
            expected_total=body.expected_total,
            items=[Wanted(i.product_id, i.quantity, i.campaign_id) for i in body.items],
        )
        done = service.checkout_order(
            uow,
            bank,
            actor,
            data,
            key=key,
            fingerprint=fingerprint("POST", "/shop/checkout", body.model_dump(mode="json")),
            lock_seconds=settings.idempotency_in_flight_seconds,
            reservation=timedelta(minutes=settings.shop_reservation_minutes),
        )
        out = order_out(uow, done.order, done.placed)
        headers = {"Idempotent-Replayed": "true"} if done.replayed else None
        # Serialised by pydantic in one pass (compact UTF-8, as JSONResponse renders it).
        return Response(
            out.model_dump_json(), status_code=201, headers=headers, media_type="application/json"
        )


class CheckoutEdge:
    """`POST /shop/checkout` answered in front of the application's router (plain ASGI).

    At hundreds of checkouts a second the request around a checkout cost about as much as the
    checkout's own Python: the router tried ~340 routes before this one, and FastAPI's
    dependency and validation machinery ran with two hops to the thread pool. This middleware
    sits innermost (inside the session, language, request id and security headers middlewares,
    which still apply) and answers a checkout whose body is a valid `schemas.CheckoutIn` itself,
    with the route's own code in one hop to the thread pool: the caller's principal and
    permission first (`_allowed`, as the route's `_buyer`), then `_checkout` (the
    Idempotency-Key, the checkout, the answer); a refusal is the same RFC 9457 problem the
    route's handlers render. Anything else goes on to the routes unchanged: other methods and
    paths, a body that is not `application/json`, and one that is not a valid CheckoutIn
    (replayed to the route, whose 422 names the fields, after the principal's check as ever).
    The route stays the documented endpoint (OpenAPI) and answers exactly as before."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.path = f"{prefix}{router.prefix}/checkout"
        self.buyers = Buyers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not is_json(headers.get("content-type", "")):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the caller went away
        try:
            # As FastAPI reads a JSON body: decoded, then validated from Python objects.
            checkout_in = schemas.CheckoutIn.model_validate(json.loads(body))
        except ValueError:  # not JSON, or not a CheckoutIn (ValidationError is a ValueError)
            await self.app(scope, replay_body(body, receive), send)
            return
        request = Request(scope, receive)
        try:
            response = await run_in_threadpool(
                _edge_checkout,
                request,
                checkout_in,
                headers.get("authorization"),
                headers.get("idempotency-key"),
                self.buyers,
            )
        except Problem as problem:
            response = problem_response(problem, request)
        await response(scope, receive, send)


def _edge_checkout(
    request: Request,
    body: schemas.CheckoutIn,
    authorization: str | None,
    idempotency_key: str | None,
    buyers: Buyers,
) -> Response:
    """The route's dependency and body, in the route's order, on one worker thread."""
    actor = buyers.allowed(request, authorization, Permission.ORDERS_CREATE)
    return _checkout(request, body, actor, idempotency_key)


class Buyers:
    """Who a customer's bearer token speaks for, for the checkouts `CheckoutEdge` answers: the
    token's expiry checked on every request, its signature and the customer behind it at most
    every `TTL_SECONDS` per process (as the card switch's callers are). The same token always
    decodes to the same claims, so only their expiry can change; and a customer has nothing
    that could shut them out meanwhile (no deactivation, and customers are never deleted). Users
    and API clients, who can be deactivated at once, and every token this does not read as a
    valid customer's, take the route's lookup (`_allowed`) on every request, with its problems."""

    TTL_SECONDS = 5.0
    _LIMIT = 10_000  # tokens remembered per process

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, int, Principal]] = {}  # read at, expiry, principal

    def allowed(
        self, request: Request, authorization: str | None, permission: Permission
    ) -> Principal:
        scheme, _space, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _allowed(request, authorization, permission)
        state = request.app.state
        now = int(state.clock.now().timestamp())
        known = self._known.get(token)
        if known is not None and now < known[1] and time.monotonic() - known[0] <= self.TTL_SECONDS:
            return require(known[2], permission)
        secret = get_settings(request).secret_key.get_secret_value()
        claims = read_access_token(secret, token, now=state.clock.now())
        if claims.kind != "customer":
            return _allowed(request, authorization, permission)
        with UnitOfWork(state.session_factory, state.clock) as uow:
            uow.single_statements()  # one SELECT: no BEGIN and ROLLBACK around it
            principal = identity.principal_for(uow, claims.kind, claims.subject)
        if len(self._known) >= self._LIMIT:
            self._known.clear()
        expiry = int(claims.expires_at.timestamp())
        self._known[token] = (time.monotonic(), expiry, principal)
        return require(principal, permission)


# -- the customer's orders -----------------------------------------------------------------------


@router.get("/orders", response_model=Page[schemas.OrderOut], summary="Your orders, newest first")
def list_orders(
    uow: UoW, actor: Reader, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page[schemas.OrderOut]:
    rows, next_cursor = service.list_customer_orders(uow, actor, cursor=cursor, limit=limit)
    return Page(items=[order_out(uow, o) for o in rows], next_cursor=next_cursor)


@router.get("/orders/{order_id}", response_model=schemas.OrderOut, summary="One of your orders")
def get_order(order_id: str, uow: UoW, actor: Reader) -> schemas.OrderOut:
    return order_out(uow, service.customer_order(uow, actor, order_id))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=schemas.OrderOut,
    summary="Cancel your order before it ships (the payment is released)",
    responses=_ORDER_PROBLEMS,
)
def cancel_order(order_id: str, uow: UoW, actor: Buyer, bank: Gateway) -> schemas.OrderOut:
    return order_out(uow, service.cancel(uow, bank, actor, order_id))


@router.post(
    "/orders/{order_id}/return",
    response_model=schemas.OrderOut,
    summary="Ask to return a delivered order, within the partner's return window",
    responses=_ORDER_PROBLEMS,
)
def request_return(
    order_id: str, body: schemas.ReturnIn, uow: UoW, actor: Buyer
) -> schemas.OrderOut:
    return order_out(uow, service.request_return(uow, actor, order_id, body.reason))


# -- the partner's orders ------------------------------------------------------------------------


@router.get(
    "/partner/orders",
    response_model=Page[schemas.PartnerOrderOut],
    summary="Orders placed with your shop, newest first",
)
def list_partner_orders(
    uow: UoW,
    actor: Reader,
    status: OrderStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.PartnerOrderOut]:
    rows, next_cursor = service.list_partner_orders(
        uow, actor, status=status, cursor=cursor, limit=limit
    )
    return Page(items=[partner_order_out(uow, o) for o in rows], next_cursor=next_cursor)


@router.get(
    "/partner/orders/{order_id}",
    response_model=schemas.PartnerOrderOut,
    summary="An order placed with your shop",
)
def get_partner_order(order_id: str, uow: UoW, actor: Reader) -> schemas.PartnerOrderOut:
    return partner_order_out(uow, service.partner_order(uow, actor, order_id))


@router.post(
    "/partner/orders/{order_id}/fulfil",
    response_model=schemas.PartnerOrderOut,
    summary="Start fulfilling a paid order",
    responses=_ORDER_PROBLEMS,
)
def fulfil(order_id: str, uow: UoW, actor: Fulfiller) -> schemas.PartnerOrderOut:
    return partner_order_out(uow, service.fulfil(uow, actor, order_id))


@router.post(
    "/partner/orders/{order_id}/shipments",
    response_model=schemas.PartnerOrderOut,
    status_code=201,
    summary="Ship all or some units; the shipment captures its share of the payment",
    responses=_ORDER_PROBLEMS,
)
def ship(
    order_id: str,
    body: schemas.ShipmentIn,
    uow: UoW,
    actor: Fulfiller,
    bank: Gateway,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> schemas.PartnerOrderOut:
    """With an `Idempotency-Key` (recommended), a retried request ships nothing more."""
    lines = [service.ShipLine(line.sku, line.quantity) for line in body.lines]
    if idempotency_key is None:
        service.ship(
            uow, bank, actor, order_id, lines=lines, carrier=body.carrier, tracking=body.tracking
        )
    else:
        service.ship_once(
            uow,
            bank,
            actor,
            order_id,
            key=check_key(idempotency_key),
            fingerprint=fingerprint(
                "POST", f"/shop/partner/orders/{order_id}/shipments", body.model_dump(mode="json")
            ),
            lock_seconds=settings.idempotency_in_flight_seconds,
            lines=lines,
            carrier=body.carrier,
            tracking=body.tracking,
        )
    return partner_order_out(uow, service.partner_order(uow, actor, order_id))


@router.post(
    "/partner/orders/{order_id}/deliver",
    response_model=schemas.PartnerOrderOut,
    summary="Mark a shipped order delivered (its return window starts)",
    responses=_ORDER_PROBLEMS,
)
def deliver(order_id: str, uow: UoW, actor: Fulfiller) -> schemas.PartnerOrderOut:
    return partner_order_out(uow, service.deliver(uow, actor, order_id))


@router.post(
    "/partner/orders/{order_id}/returned",
    response_model=schemas.PartnerOrderOut,
    summary="Confirm the goods came back: refunds the customer through the bank",
    responses=_ORDER_PROBLEMS,
)
def returned(
    order_id: str, body: schemas.ReturnedIn, uow: UoW, actor: Fulfiller, bank: Gateway
) -> schemas.PartnerOrderOut:
    order = service.confirm_returned(
        uow,
        bank,
        actor,
        order_id,
        lines=[service.ShipLine(line.sku, line.quantity) for line in body.lines],
    )
    return partner_order_out(uow, order)
