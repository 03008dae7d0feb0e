"""The partner shop's pages for customers (mobile first, embeddable in the bank's app): catalog,
products and group buys, cart and checkout, orders, support tickets and the NPS survey."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from beyondbank.commerce import service as partners
from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.groupbuy import service as groupbuy
from beyondbank.commerce.models import (
    CampaignStatus,
    NpsResponse,
    Order,
    OrderEvent,
    OrderStatus,
    TicketStatus,
)
from beyondbank.commerce.orders import checkout as order_lines
from beyondbank.commerce.orders import crosssell, transitions
from beyondbank.commerce.orders import service as orders
from beyondbank.commerce.orders.schemas import CheckoutIn as CheckoutSchema
from beyondbank.commerce.support import nps
from beyondbank.commerce.support import service as support
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.money import Money
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.payments.api import Gateway
from beyondbank.payments.gateway import PaymentDeclined
from beyondbank.web.customer import display
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import N_, _, format_locale
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, CustomerPage, flash
from beyondbank.web.templating import words

router = APIRouter(prefix="/shop", include_in_schema=False)

# A phone screen's worth of products per page; the next page is a link.
PAGE_SIZE = 20
ORDERS_PAGE = 20
ADDRESS_FIELDS = (
    "shipping_address.recipient",
    "shipping_address.line1",
    "shipping_address.line2",
    "shipping_address.city",
    "shipping_address.postcode",
    "shipping_address.country",
)
CONSENT_FIELD = "share_address_with_partner"
CONSENT_MESSAGE = N_(
    "Tick the box to let the partner have this address: it cannot send the order without it."
)
NPS_SCORES = tuple(range(11))


# -- small helpers ---------------------------------------------------------------------------------


def _partner_names(uow: UnitOfWork, public_ids: set[str]) -> dict[str, str]:
    return {ref: partners.get_partner(uow, ref).name for ref in public_ids}


def _quantity(form: Form, name: str = "quantity", *, allow_zero: bool = False) -> int | None:
    """The typed quantity as a whole number, or None with the field's error on the form."""
    text = form.value(name).strip()
    lowest = 0 if allow_zero else 1
    if not text:
        form.errors[name] = _("Enter how many you want.")
        return None
    if not text.isdigit() or not lowest <= int(text) <= 10_000:
        form.errors[name] = _("Enter a whole number from %(low)s to 10000.", low=lowest)
        return None
    return int(text)


def _campaign_view(p: groupbuy.Progress) -> dict[str, Any]:
    """What a progress bar shows: the units against the top tier, and the words beside it."""
    top = max(p.tiers[-1].min_units if p.tiers else 1, p.units, 1)
    return {
        "progress": p,
        "id": p.campaign.public_id,
        "title": p.campaign.title,
        "currency": p.campaign.currency,
        "bar_max": top,
        "bar_value": min(p.units, top),
        # "2 days 3 hours left", or "closed" once the window is over (or the buy is decided).
        "time_left": display.time_left(p.seconds_left, format_locale()),
        "closed": p.seconds_left <= 0,
        "joinable": p.status == CampaignStatus.OPEN.value,
    }


def _open_campaign_for(
    uow: UnitOfWork, principal: Principal, product_id: str
) -> groupbuy.Progress | None:
    # The group-buy service lists open campaigns; a product has at most a few at once.
    found, _next = groupbuy.list_progress(
        uow, principal, status=CampaignStatus.OPEN, limit=MAX_LIMIT
    )
    return next((p for p in found if p.product_id == product_id), None)


def _decimal(amount_minor: int, currency: str) -> str:
    """Minor units as the decimal string the checkout compares with its total ("24.99")."""
    return str(Money(amount_minor, currency).to_decimal())


# -- the catalog ---------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def catalog_page(
    request: Request,
    uow: UoW,
    principal: CustomerPage,
    q: str = "",
    category: str = "",
    cursor: str | None = None,
) -> Response:
    now = uow.clock.now()
    offers, next_cursor = catalog.search_offers(
        uow,
        now,
        text=q.strip()[:100] or None,
        category=category or None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    query = urlencode([(k, v) for k, v in (("q", q), ("category", category)) if v])
    context = {
        "offers": offers,
        "partner_names": _partner_names(uow, {o.partner_public_id for o in offers}),
        "categories": catalog.categories(uow, now, None),
        "q": q,
        "category": category,
        "next_cursor": next_cursor,
        "cursor": cursor,
        "query": query,
    }
    return render(request, "shop/catalog.html", context, principal=principal)


def _product_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    product_id: str,
    *,
    cart_form: Form | None = None,
    join_form: Form | None = None,
    status_code: int = 200,
) -> Response:
    offer = catalog.get_offer(uow, principal, product_id, uow.clock.now())
    campaign = _open_campaign_for(uow, principal, product_id)
    context = {
        "offer": offer,
        "partner_name": partners.get_partner(uow, offer.partner_public_id).name,
        "campaign": _campaign_view(campaign) if campaign else None,
        "cart_form": cart_form or Form("cart", values={"quantity": "1"}),
        "join_form": join_form or Form("join", values={"quantity": "1"}),
    }
    return render(
        request, "shop/product.html", context, principal=principal, status_code=status_code
    )


@router.get("/products/{product_id}", response_class=HTMLResponse)
def product_page(request: Request, product_id: str, uow: UoW, principal: CustomerPage) -> Response:
    return _product_page(request, uow, principal, product_id)


@router.post("/cart/items", response_class=HTMLResponse, dependencies=[CsrfChecked])
def add_to_cart(
    request: Request, uow: UoW, principal: CustomerPage, posted: PostedForm
) -> Response:
    """Add to the cart from a product page: plainly, or joining its group buy (`campaign_id`)."""
    product_id = posted.get("product_id")
    campaign_id = posted.get("campaign_id") or None
    form = Form("join" if campaign_id else "cart", values=posted.typed())
    quantity = _quantity(form)
    if quantity is not None:
        try:
            orders.add_item(
                uow, principal, product_id=product_id, quantity=quantity, campaign_id=campaign_id
            )
        except Problem as problem:
            uow.rollback()
            form.absorb(problem, ("quantity",))
    if form.failed:
        forms = {"join_form" if campaign_id else "cart_form": form}
        return _product_page(request, uow, principal, product_id, status_code=422, **forms)
    flash(request, _("Added to your cart."))
    return RedirectResponse("/shop/cart", status_code=303)


# -- group buys ----------------------------------------------------------------------------------


@router.get("/group-buys", response_class=HTMLResponse)
def group_buys_page(
    request: Request, uow: UoW, principal: CustomerPage, cursor: str | None = None
) -> Response:
    found, next_cursor = groupbuy.list_progress(
        uow, principal, status=CampaignStatus.OPEN, cursor=cursor, limit=PAGE_SIZE
    )
    context = {
        "campaigns": [_campaign_view(p) for p in found],
        "next_cursor": next_cursor,
        "cursor": cursor,
    }
    return render(request, "shop/group_buys.html", context, principal=principal)


@router.get("/group-buys/{campaign_id}", response_class=HTMLResponse)
def group_buy_page(
    request: Request, campaign_id: str, uow: UoW, principal: CustomerPage
) -> Response:
    progress = groupbuy.progress(uow, principal, campaign_id)
    context = {
        "campaign": _campaign_view(progress),
        "join_form": Form("join", values={"quantity": "1"}),
    }
    return render(request, "shop/group_buy.html", context, principal=principal)


# -- the cart and checkout -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Figures:
    """What a cart costs as the checkout will charge it, and the bank's offers for it."""

    units: dict[str, int]  # the unit price of each line, by product
    goods: int
    protection: int
    insurer: str | None  # None: no insurer underwrites device protection, none is offered
    plans: list[tuple[int, list[crosssell.Instalment]]]


def _figures(uow: UnitOfWork, principal: Principal, view: orders.CartView) -> _Figures:
    """The cart's lines and the bank's offers, priced as the checkout charges them (a group-buy
    line at its campaign's entry price)."""
    offers = orders.offers(uow, principal, view.partner_id)
    return _Figures(
        {line.product_id: line.unit_minor or 0 for line in view.lines},
        offers.goods_minor,
        offers.protection_minor,
        offers.insurer,
        sorted(offers.instalments.items()),
    )


def _checkout_form(partner_id: str) -> Form:
    return Form(f"checkout-{partner_id}", values={"shipping_address.country": "GB"})


def _cart_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    *,
    failed: Form | None = None,
    failed_partner: str | None = None,
    page_problem: str | None = None,
    status_code: int = 200,
) -> Response:
    views = [v for v in orders.carts(uow, principal) if v.lines]
    names = _partner_names(uow, {v.partner_id for v in views})
    carts = []
    for view in views:
        figures: _Figures | None = None
        problem = None
        try:
            figures = _figures(uow, principal, view)
        except Problem as exc:  # e.g. a product no longer for sale: the cart says which
            uow.rollback()
            problem = exc.detail
        form = failed if failed is not None and failed_partner == view.partner_id else None
        form = form or _checkout_form(view.partner_id)
        # A fresh key for every form shown: two posts of this form are one checkout.
        form.values["idempotency_key"] = secrets.token_urlsafe(24)
        if figures is not None:
            form.values["expected_total"] = _decimal(figures.goods, view.currency)
            form.values["expected_total_protected"] = _decimal(
                figures.goods + figures.protection, view.currency
            )
        carts.append(
            {
                "view": view,
                "partner_name": names[view.partner_id],
                "figures": figures,
                "problem": problem,
                "form": form,
            }
        )
    context = {"carts": carts, "page_problem": page_problem}
    return render(request, "shop/cart.html", context, principal=principal, status_code=status_code)


@router.get("/cart", response_class=HTMLResponse)
def cart_page(request: Request, uow: UoW, principal: CustomerPage) -> Response:
    return _cart_page(request, uow, principal)


@router.post(
    "/cart/items/{product_id}/quantity", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def change_quantity(
    request: Request, product_id: str, uow: UoW, principal: CustomerPage, posted: PostedForm
) -> Response:
    """A new quantity for a line (0 takes it out): the line is replaced, keeping its group buy."""
    form = Form("line", values=posted.typed())
    quantity = _quantity(form, allow_zero=True)
    if quantity is None:
        flash(request, form.errors["quantity"], "error")
        return RedirectResponse("/shop/cart", status_code=303)
    line = next(
        (
            line
            for view in orders.carts(uow, principal)
            for line in view.lines
            if line.product_id == product_id
        ),
        None,
    )
    try:
        orders.remove_item(uow, principal, product_id)
        if quantity and line is not None:
            orders.add_item(
                uow,
                principal,
                product_id=product_id,
                quantity=quantity,
                campaign_id=line.campaign_id,
            )
    except Problem as problem:
        uow.rollback()
        flash(request, problem.detail, "error")
        return RedirectResponse("/shop/cart", status_code=303)
    flash(request, _("Your cart is updated."))
    return RedirectResponse("/shop/cart", status_code=303)


@router.post(
    "/cart/items/{product_id}/remove", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def remove_from_cart(
    request: Request, product_id: str, uow: UoW, principal: CustomerPage
) -> Response:
    try:
        orders.remove_item(uow, principal, product_id)
    except Problem as problem:
        uow.rollback()
        flash(request, problem.detail, "error")
        return RedirectResponse("/shop/cart", status_code=303)
    flash(request, _("Taken out of your cart."))
    return RedirectResponse("/shop/cart", status_code=303)


def _checkout_body(form: Form) -> dict[str, Any]:
    """The checkout form as the API's request body, so the API's schema checks it."""
    values = dict(form.values)
    country = form.value("shipping_address.country").strip().upper()
    if country:
        values["shipping_address.country"] = country
    body = nested(values, ("partner_id", *ADDRESS_FIELDS))
    body.setdefault("shipping_address", {})
    if form.value(CONSENT_FIELD) == "true":
        body[CONSENT_FIELD] = True  # unticked it is missing, and the schema says it is required
    months = form.value("instalment_months")
    if months:
        body["instalment_months"] = int(months) if months.isdigit() else months
    protected = form.value("device_protection") == "true"
    body["device_protection"] = protected
    expected = form.value("expected_total_protected" if protected else "expected_total")
    if expected:
        body["expected_total"] = expected
    return body


@router.post("/checkout", response_class=HTMLResponse, dependencies=[CsrfChecked])
def place_order(
    request: Request,
    uow: UoW,
    principal: CustomerPage,
    bank: Gateway,
    settings: SettingsDep,
    posted: PostedForm,
) -> Response:
    partner_id = posted.get("partner_id")
    form = Form(f"checkout-{partner_id}", values=posted.typed())
    body = _checkout_body(form)
    data = validate(
        CheckoutSchema,
        body,
        form,
        messages={
            CONSENT_FIELD: _(CONSENT_MESSAGE),
            "instalment_months": _("Choose 3, 6 or 12 months, or pay at once."),
        },
    )
    key = form.value("idempotency_key")
    if data is None or not key:
        form.problem = None if key else _("The form has expired; check the order and try again.")
        return _cart_page(
            request, uow, principal, failed=form, failed_partner=partner_id, status_code=422
        )
    try:
        done = orders.checkout_order(
            uow,
            bank,
            principal,
            orders.CheckoutIn(
                partner_id=data.partner_id,
                shipping_address=data.shipping_address.model_dump(exclude_none=True),
                share_address_with_partner=data.share_address_with_partner,
                instalment_months=data.instalment_months,
                device_protection=data.device_protection,
                expected_total=data.expected_total,
            ),
            key=key[:255],
            fingerprint=fingerprint("POST", "/shop/checkout", body),
            lock_seconds=settings.idempotency_in_flight_seconds,
            reservation=timedelta(minutes=settings.shop_reservation_minutes),
        )
    except Problem as problem:
        uow.rollback()
        form.absorb(problem, (CONSENT_FIELD, "instalment_months", *ADDRESS_FIELDS))
        # A decline ends the attempt (its order is cancelled and the cart used), so the
        # bank's reason is said at the top of the page, not beside a form that may be gone.
        declined = (
            _("The bank declined the payment: %(reason)s", reason=problem.detail)
            if isinstance(problem, PaymentDeclined)
            else None
        )
        return _cart_page(
            request,
            uow,
            principal,
            failed=form,
            failed_partner=partner_id,
            page_problem=declined,
            status_code=problem.status,
        )
    order_id = done.order.public_id
    if done.replayed:
        flash(request, _("This order was placed already; here it is."))
    else:
        flash(request, _("Thank you: your order is placed and paid."))
    return RedirectResponse(f"/shop/orders/{order_id}", status_code=303)


# -- my orders -----------------------------------------------------------------------------------


@router.get("/orders", response_class=HTMLResponse)
def orders_page(
    request: Request, uow: UoW, principal: CustomerPage, cursor: str | None = None
) -> Response:
    rows, next_cursor = orders.list_customer_orders(
        uow, principal, cursor=cursor, limit=ORDERS_PAGE
    )
    refs = partners.partner_public_ids(uow, {o.partner_id for o in rows})
    names = _partner_names(uow, set(refs.values()))
    context = {
        "orders": [(o, names[refs[o.partner_id]]) for o in rows],
        "next_cursor": next_cursor,
        "cursor": cursor,
    }
    return render(request, "shop/orders.html", context, principal=principal)


def _nps_answer(uow: UnitOfWork, order: Order) -> NpsResponse | None:
    # The survey service has no reader for one answer; its row is unique by order.
    return uow.session.scalars(
        select(NpsResponse).where(NpsResponse.order_id == order.id)
    ).one_or_none()


def _order_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    order_id: str,
    *,
    forms: dict[str, Form] | None = None,
    page_problem: str | None = None,
    status_code: int = 200,
) -> Response:
    order = orders.customer_order(uow, principal, order_id)
    lines = order_lines.lines_of(uow, order)
    products = catalog.products_by_ids(uow, {line.product_id for line in lines})
    partner_ref = partners.partner_public_ids(uow, {order.partner_id})[order.partner_id]
    now = uow.clock.now()
    window = order.return_window_ends_at
    tickets, _more = support.list_tickets(
        uow, principal, support.TicketFilters(order_id=order.public_id), cursor=None, limit=10
    )
    given = {
        "return": Form("return"),
        "ticket": Form("ticket", values={"subject": _("About my order %(id)s", id=order_id)}),
        "nps": Form("nps"),
        **(forms or {}),
    }
    events = orders.order_events(uow, order)
    context = {
        "order": order,
        "partner_name": partners.get_partner(uow, partner_ref).name,
        "lines": [(line, products[line.product_id]) for line in lines],
        "events": [(event, _history_note(event.note)) for event in events],
        "renewal_refused": _renewal_refused(order, events),
        "shipments": orders.shipments_of(uow, order),
        "plan": [
            (date.fromisoformat(str(i["due"])), int(i["amount_minor"]))
            for i in order.instalment_plan or []
        ],
        "can_cancel": transitions.allowed(order.status, OrderStatus.CANCELLED),
        "can_return": transitions.allowed(order.status, OrderStatus.RETURN_REQUESTED)
        and (window is None or now <= window),
        "survey_open": order.status in nps.SURVEYED,
        "nps_answer": _nps_answer(uow, order),
        "scores": [(str(s), str(s)) for s in NPS_SCORES],
        "tickets": tickets,
        "forms": given,
        "page_problem": page_problem,
    }
    return render(request, "shop/order.html", context, principal=principal, status_code=status_code)


def _history_note(note: str | None) -> str | None:
    """An order event's note in the customer's words: the notes the re-authorisation job and a
    partial return leave are said in the viewer's language; others are shown as they were
    written."""
    if note is None:
        return None
    if note.startswith(orders.REAUTHORISED):
        return _("The bank renewed the hold on your payment.")
    if note.startswith(orders.REAUTHORISATION_DECLINED):
        return _("The bank would not renew the hold on your payment.")
    if note == orders.PARTLY_RETURNED:
        return _("Part of the order came back and was refunded; you keep the rest.")
    return note


def _renewal_refused(order: Order, events: Sequence[OrderEvent]) -> str | None:
    """Why the order was cancelled, when it was because the bank would not renew its payment's
    hold: the bank's reason, in words (None otherwise)."""
    if order.status is not OrderStatus.CANCELLED or not events:
        return None
    note = events[-1].note or ""
    if not note.startswith(orders.REAUTHORISATION_DECLINED):
        return None
    return words(note.partition(": ")[2] or "declined")


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str, uow: UoW, principal: CustomerPage) -> Response:
    return _order_page(request, uow, principal, order_id)


@router.post("/orders/{order_id}/cancel", response_class=HTMLResponse, dependencies=[CsrfChecked])
def cancel_order(
    request: Request, order_id: str, uow: UoW, principal: CustomerPage, bank: Gateway
) -> Response:
    try:
        orders.cancel(uow, bank, principal, order_id)
    except Problem as problem:
        uow.rollback()
        if problem.status == 404:
            raise
        return _order_page(
            request,
            uow,
            principal,
            order_id,
            page_problem=problem.detail,
            status_code=problem.status,
        )
    flash(request, _("Your order is cancelled; the bank releases your payment."))
    return RedirectResponse(f"/shop/orders/{order_id}", status_code=303)


@router.post("/orders/{order_id}/return", response_class=HTMLResponse, dependencies=[CsrfChecked])
def request_return(
    request: Request, order_id: str, uow: UoW, principal: CustomerPage, posted: PostedForm
) -> Response:
    form = Form("return", values=posted.typed())
    reason = form.value("reason").strip()
    if len(reason) > 1_000:
        form.errors["reason"] = _("At most 1000 characters.")
    else:
        try:
            orders.request_return(uow, principal, order_id, reason)
        except Problem as problem:
            uow.rollback()
            if problem.status == 404:
                raise
            form.absorb(problem, ("reason",))
    if form.failed:
        return _order_page(
            request, uow, principal, order_id, forms={"return": form}, status_code=409
        )
    flash(request, _("Your return is requested; the partner will tell you how to send it back."))
    return RedirectResponse(f"/shop/orders/{order_id}", status_code=303)


@router.post("/orders/{order_id}/nps", response_class=HTMLResponse, dependencies=[CsrfChecked])
def answer_survey(
    request: Request, order_id: str, uow: UoW, principal: CustomerPage, posted: PostedForm
) -> Response:
    form = Form("nps", values=posted.typed())
    score = form.value("score")
    if not score.isdigit() or int(score) not in NPS_SCORES:
        form.errors["score"] = _("Choose a score from 0 to 10.")
    elif len(form.value("comment")) > nps.MAX_COMMENT:
        form.errors["comment"] = _("At most %(n)s characters.", n=nps.MAX_COMMENT)
    else:
        try:
            nps.answer(uow, principal, order_id, int(score), form.value("comment"))
        except Problem as problem:
            uow.rollback()
            if problem.status == 404:
                raise
            form.absorb(problem, ("score", "comment"))
            # Answered already: the page shows the answer, not the form, so say it at the top.
            return _order_page(
                request,
                uow,
                principal,
                order_id,
                forms={"nps": form},
                page_problem=problem.detail,
                status_code=problem.status,
            )
    if form.failed:
        return _order_page(request, uow, principal, order_id, forms={"nps": form}, status_code=422)
    flash(request, _("Thank you for your answer."))
    return RedirectResponse(f"/shop/orders/{order_id}#survey", status_code=303)


# -- support -------------------------------------------------------------------------------------


@router.get("/support", response_class=HTMLResponse)
def tickets_page(
    request: Request, uow: UoW, principal: CustomerPage, cursor: str | None = None
) -> Response:
    rows, next_cursor = support.list_tickets(
        uow, principal, support.TicketFilters(), cursor=cursor, limit=ORDERS_PAGE
    )
    context = {"tickets": rows, "next_cursor": next_cursor, "cursor": cursor}
    return render(request, "shop/tickets.html", context, principal=principal)


@router.post("/support", response_class=HTMLResponse, dependencies=[CsrfChecked])
def open_ticket(
    request: Request, uow: UoW, principal: CustomerPage, posted: PostedForm
) -> Response:
    """A ticket about one of my orders, opened from the order's page."""
    order_id = posted.get("order_id")
    form = Form("ticket", values=posted.typed())
    try:
        ticket = support.open_ticket(
            uow,
            principal,
            support.TicketIn(
                subject=form.value("subject"), message=form.value("message"), order_id=order_id
            ),
        )
    except Problem as problem:
        uow.rollback()
        if problem.status == 404 or any(e.field == "body.order_id" for e in problem.errors):
            raise
        form.absorb(problem, ("subject", "message"))
        return _order_page(
            request, uow, principal, order_id, forms={"ticket": form}, status_code=problem.status
        )
    flash(request, _("Your message is sent to the partner."))
    return RedirectResponse(f"/shop/support/{ticket.public_id}", status_code=303)


def _ticket_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    ticket_id: str,
    *,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    ticket = support.get_ticket(uow, principal, ticket_id)
    partner_ref = partners.partner_public_ids(uow, {ticket.partner_id})[ticket.partner_id]
    order_ref = None
    if ticket.order_id is not None:
        order = uow.session.get(Order, ticket.order_id)
        order_ref = order.public_id if order else None
    context = {
        "ticket": ticket,
        "partner_name": partners.get_partner(uow, partner_ref).name,
        "order_ref": order_ref,
        "messages": support.messages_of(uow, ticket),
        "form": form or Form("reply"),
        "can_reply": ticket.status is not TicketStatus.CLOSED,
    }
    return render(
        request, "shop/ticket.html", context, principal=principal, status_code=status_code
    )


@router.get("/support/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: str, uow: UoW, principal: CustomerPage) -> Response:
    return _ticket_page(request, uow, principal, ticket_id)


@router.post(
    "/support/{ticket_id}/messages", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def reply(
    request: Request, ticket_id: str, uow: UoW, principal: CustomerPage, posted: PostedForm
) -> Response:
    form = Form("reply", values=posted.typed())
    try:
        support.post_message(uow, principal, ticket_id, form.value("body"))
    except Problem as problem:
        uow.rollback()
        if problem.status == 404:
            raise
        form.absorb(problem, ("body",))
        return _ticket_page(
            request, uow, principal, ticket_id, form=form, status_code=problem.status
        )
    flash(request, _("Your message is sent."))
    return RedirectResponse(f"/shop/support/{ticket_id}", status_code=303)
