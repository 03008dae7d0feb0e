"""The partner's home page and its orders: a list filtered by status, one order with its lines,
history and shipments, and the moves the transition table gives the partner (start fulfilling,
ship what is left or chosen lines and quantities, delivered, the goods are back), each through
the orders service as in the API; another partner's order is a 404."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from beyondbank.commerce import service as partners
from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.models import Order, OrderLine, OrderStatus
from beyondbank.commerce.orders import checkout as order_lines
from beyondbank.commerce.orders import service as orders
from beyondbank.commerce.orders import transitions
from beyondbank.commerce.orders.schemas import ShipmentIn
from beyondbank.commerce.support import service as support
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.errors import Problem
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.payments.api import Gateway
from beyondbank.web.console.params import or_none
from beyondbank.web.forms import Form as PageForm
from beyondbank.web.forms import PostedForm, validate
from beyondbank.web.i18n import N_, _
from beyondbank.web.pages import render
from beyondbank.web.partner.guards import OrderMover, OrderReader
from beyondbank.web.session import CsrfChecked, PartnerPage, flash

router = APIRouter(prefix="/partner", include_in_schema=False)

S = OrderStatus
PAGE_SIZE = 50
# The moves the partner makes, by the status they lead to: (action in the URL, button label).
MOVES: dict[OrderStatus, tuple[str, str]] = {
    S.FULFILLING: ("fulfil", N_("Start fulfilling")),
    S.SHIPPED: ("ship", N_("Ship everything left")),
    S.DELIVERED: ("deliver", N_("Mark delivered")),
    S.RETURNED: ("returned", N_("The goods are back: refund")),
}


def partner_moves(status: OrderStatus) -> list[tuple[str, str]]:
    """The partner's moves from `status`, as the transition table allows them."""
    return [
        (action, _(label))
        for target, (action, label) in MOVES.items()
        if transitions.partner_may(status, target)
    ]


def _counts(uow: UnitOfWork, principal: Principal) -> dict[str, int]:
    rows = uow.session.execute(
        select(Order.status, func.count())
        .where(Order.partner_id == principal.partner_id)
        .group_by(Order.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


@router.get("", response_class=HTMLResponse)
def partner_home(request: Request, uow: UoW, principal: PartnerPage) -> Response:
    assert principal.partner_id is not None  # the page guard has made sure
    partner_ref = partners.partner_public_ids(uow, {principal.partner_id})[principal.partner_id]
    context: dict[str, Any] = {
        "partner": partners.get_partner(uow, partner_ref),
        "counts": _counts(uow, principal) if can(principal, Permission.ORDERS_READ) else {},
        "statuses": list(S),
        "overdue": (
            len(support.overdue(uow, principal, limit=100))
            if can(principal, Permission.SUPPORT_READ)
            else None
        ),
        "low_stock": (
            len(catalog.stock_levels(uow, principal, low_at=0, limit=100)[0])
            if can(principal, Permission.SHOP_READ)
            else None
        ),
    }
    return render(request, "partner/home.html", context, principal=principal)


@router.get("/orders", response_class=HTMLResponse)
def orders_page(
    request: Request,
    uow: UoW,
    principal: OrderReader,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = S(status) if status in {s.value for s in S} else None
    rows, next_cursor = orders.list_partner_orders(
        uow, principal, status=chosen, cursor=or_none(cursor), limit=PAGE_SIZE
    )
    context = {
        "rows": rows,
        "statuses": list(S),
        "chosen": chosen.value if chosen else "",
        "next_cursor": next_cursor,
        "cursor": cursor,
        "query": f"status={chosen.value}" if chosen else "",
    }
    return render(request, "partner/orders.html", context, principal=principal)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str, uow: UoW, principal: OrderReader) -> Response:
    return _order_page(request, uow, principal, order_id)


def _order_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    order_id: str,
    *,
    part: PageForm | None = None,
    status_code: int = 200,
) -> Response:
    order = orders.partner_order(uow, principal, order_id)
    lines = order_lines.lines_of(uow, order)
    sku = order_lines.skus(uow, lines)
    context = {
        "order": order,
        "lines": [(line, sku[line.product_id]) for line in lines],
        "events": orders.order_events(uow, order),
        "shipments": orders.shipments_of(uow, order),
        "moves": partner_moves(order.status) if can(principal, Permission.ORDERS_FULFIL) else [],
        # One shipment per form shown: its key is the shipment's Idempotency-Key.
        "ship_key": secrets.token_urlsafe(16),
        "part_key": secrets.token_urlsafe(16),
        "part": part or PageForm("part"),
        # The partial shipment form's lines: (index, line, sku, units left to ship).
        "unshipped": [
            (index, line, sku[line.product_id], line.quantity - line.shipped_quantity)
            for index, line in enumerate(lines)
            if line.quantity > line.shipped_quantity
        ],
    }
    return render(
        request, "partner/order.html", context, principal=principal, status_code=status_code
    )


def _chosen_units(
    form: PageForm, lines: list[OrderLine], sku: dict[int, str]
) -> tuple[list[tuple[int, orders.ShipLine]], dict[str, str]]:
    """The units typed per line as (the line's index on the form, what to ship), blank or 0
    shipping none of a line; and the fields whose quantity is not a whole number from 0."""
    chosen, errors = [], {}
    for index, line in enumerate(lines):
        name = f"lines.{index}.quantity"
        typed = form.value(name).strip()
        if not typed:
            continue
        if not typed.isdigit() or not typed.isascii():
            errors[name] = _("A whole number, in digits.")
        elif int(typed) > 0:
            chosen.append((index, orders.ShipLine(sku[line.product_id], int(typed))))
    return chosen, errors


@router.post(
    "/orders/{order_id}/ship-part", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def ship_part(
    request: Request,
    order_id: str,
    uow: UoW,
    principal: OrderMover,
    bank: Gateway,
    settings: SettingsDep,
    posted: PostedForm,
) -> Response:
    """Ship the chosen lines and quantities: the orders service's shipment as the API's partial
    shipment (its share captured, the form's key as its Idempotency-Key). A refused form shows
    the order again with each error beside its line, and nothing is shipped or captured."""
    order = orders.partner_order(uow, principal, order_id)
    page = f"/partner/orders/{order.public_id}"
    form = PageForm("part", values=posted.typed())
    lines = order_lines.lines_of(uow, order)
    chosen, typed_errors = _chosen_units(form, lines, order_lines.skus(uow, lines))
    body = {
        "lines": [{"sku": line.sku, "quantity": line.quantity} for _i, line in chosen],
        "carrier": form.value("carrier").strip() or None,
        "tracking": form.value("tracking").strip() or None,
    }
    shipment = validate(ShipmentIn, body, form)
    _beside_their_lines(form, chosen)
    form.errors.update(typed_errors)
    if not chosen and not form.errors:
        form.problem = _("Choose at least one unit to ship.")
    if shipment is None or form.failed:
        return _order_page(request, uow, principal, order_id, part=form, status_code=422)
    try:
        orders.ship_once(
            uow,
            bank,
            principal,
            order_id,
            key=form.value("key") or secrets.token_urlsafe(16),
            fingerprint=fingerprint("POST", page + "/shipments", shipment.model_dump(mode="json")),
            lock_seconds=settings.idempotency_in_flight_seconds,
            lines=[line for _i, line in chosen],
            carrier=shipment.carrier,
            tracking=shipment.tracking,
        )
    except Problem as problem:
        uow.rollback()
        if problem.status == 404:
            raise
        # The service names lines by their place among those shipped, as the API's body had them.
        form.absorb(
            problem,
            (
                f"lines.{place}.{part}"
                for place in range(len(chosen))
                for part in ("sku", "quantity")
            ),
        )
        _beside_their_lines(form, chosen)
        return _order_page(request, uow, principal, order_id, part=form, status_code=problem.status)
    flash(request, _("Order %(id)s: the chosen units are shipped.", id=order_id))
    return RedirectResponse(page, status_code=303)


def _beside_their_lines(form: PageForm, chosen: list[tuple[int, orders.ShipLine]]) -> None:
    """The schema's and the service's errors name a line by its place among the lines shipped
    (`lines.1.quantity`), the form's fields by their place among the order's lines: each error is
    moved beside its line's quantity."""
    moved = {}
    for name, message in list(form.errors.items()):
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit():
            place = int(parts[1])
            if place < len(chosen):
                del form.errors[name]
                moved[f"lines.{chosen[place][0]}.quantity"] = message
    form.errors.update(moved)


@router.post("/orders/{order_id}/{action}", response_class=HTMLResponse, dependencies=[CsrfChecked])
def move_order(
    request: Request,
    order_id: str,
    action: str,
    uow: UoW,
    principal: OrderMover,
    bank: Gateway,
    settings: SettingsDep,
    key: str = Form(default="", max_length=64),
    carrier: str = Form(default="", max_length=100),
    tracking: str = Form(default="", max_length=100),
) -> Response:
    """One of the partner's moves; a refused one (another state by now, the bank declining a
    shipment) comes back to the order page with the reason, and nothing is done."""
    order = orders.partner_order(uow, principal, order_id)
    page = f"/partner/orders/{order.public_id}"
    try:
        if action == "fulfil":
            orders.fulfil(uow, principal, order_id)
        elif action == "ship":
            orders.ship_once(
                uow,
                bank,
                principal,
                order_id,
                key=key or secrets.token_urlsafe(16),
                fingerprint=fingerprint("POST", page + "/ship", {"carrier": carrier}),
                lock_seconds=settings.idempotency_in_flight_seconds,
                carrier=carrier or None,
                tracking=tracking or None,
            )
        elif action == "deliver":
            orders.deliver(uow, principal, order_id)
        elif action == "returned":
            orders.confirm_returned(uow, bank, principal, order_id)
        else:
            return RedirectResponse(page, status_code=303)
    except Problem as problem:
        uow.rollback()
        flash(request, problem.detail, "error")
        return RedirectResponse(page, status_code=303)
    flash(request, _("Order %(id)s is updated.", id=order_id))
    return RedirectResponse(page, status_code=303)
