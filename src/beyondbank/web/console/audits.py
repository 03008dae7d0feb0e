"""Mystery-shopper audit visits in the console: the visits with filters and the corrective actions
past their date, the auditor's "record a visit" form, and a visit's page where the merchant's
relationship manager closes its corrective action."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import audits
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import AuditVisit, CorrectiveActionStatus, VisitMode, VisitOutcome
from beyondbank.alliance.schemas import AuditVisitIn, CorrectiveActionIn
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.errors import Problem
from beyondbank.core.money import POINTS, Money, is_currency
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web import lookups
from beyondbank.web.console.guards import ActionCloser, VisitReader, VisitRecorder
from beyondbank.web.console.params import choice, day_range, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash
from beyondbank.web.templating import words
from beyondbank.web.visits import visit_rows

router = APIRouter(prefix="/console", include_in_schema=False)

P = Permission
PAGE_SIZE = 30
OVERDUE_CAP = 200
ITEM_ROWS = 4  # rows on the form; a visit checks one to four things as a rule
FILTER_FIELDS = ("merchant", "outcome", "mode", "from", "to")
VISIT_FIELDS = (
    "location_id",
    "mode",
    "visited_at",
    "staff_knew_programme",
    "card_accepted",
    "signage_displayed",
    "currency",
    "notes",
    "corrective_action",
    "corrective_action_due_on",
)
# An item row counts once any of these is typed (the benefit question has an answer by default).
TYPED_ITEM_FIELDS = ("description", "public_price", "alliance_price")
OBSERVATIONS = ("staff_knew_programme", "card_accepted", "signage_displayed")


# -- the list ----------------------------------------------------------------------------------


@router.get("/audits", response_class=HTMLResponse)
def visit_list(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: VisitReader,
    cursor: str | None = None,
) -> Response:
    typed = {name: request.query_params.get(name, "") for name in FILTER_FIELDS}
    form = Form("visits", values=typed)
    since, until = day_range(form, "from", "to", settings.default_timezone)
    merchant_ref = or_none(typed["merchant"])
    filters = audits.VisitFilter(
        merchant_id=(
            alliance.get_merchant(uow, principal, merchant_ref, field="query.merchant").id
            if merchant_ref
            else None
        ),
        outcome=choice(VisitOutcome, typed["outcome"], "query.outcome"),
        mode=choice(VisitMode, typed["mode"], "query.mode"),
        since=since,
        until=until,
    )
    today = lookups.bank_today(uow.clock.now(), settings)
    visits, next_cursor = (
        ([], None)
        if form.errors
        else audits.list_visits(uow, principal, filters, cursor=or_none(cursor), limit=PAGE_SIZE)
    )
    overdue, capped = lookups.every(
        lambda page: audits.list_actions(
            uow,
            principal,
            merchant_id=None,
            status=None,
            overdue=True,
            today=today,
            cursor=page,
            limit=MAX_LIMIT,
        ),
        cap=OVERDUE_CAP,
    )
    overdue_visits = [a.visit for a in sorted(overdue, key=lambda a: (a.due_on, a.id))]
    return render(
        request,
        "console/audits.html",
        {
            "rows": visit_rows(uow, visits, today, show_auditor=True),
            "overdue": visit_rows(uow, overdue_visits, today, show_auditor=True),
            "overdue_capped": capped,
            "form": form,
            "merchant_options": audits.audited_merchants(uow),
            "outcome_options": [(o.value, words(o)) for o in VisitOutcome],
            "mode_options": [(m.value, words(m)) for m in VisitMode],
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({k: v for k, v in typed.items() if v}),
        },
        principal=principal,
        status_code=422 if form.errors else 200,
    )


# -- recording a visit -------------------------------------------------------------------------


def _record_form(
    request: Request, uow: UnitOfWork, principal: Principal, form: Form, status_code: int = 200
) -> Response:
    return render(
        request,
        "console/audit_visit_form.html",
        {
            "form": form,
            "place_groups": [
                (
                    merchant.trading_name,
                    [(loc.public_id, f"{loc.name}, {loc.address_line}") for loc in locations],
                )
                for merchant, locations in audits.places_to_visit(uow)
            ],
            "mode_options": [(m.value, words(m)) for m in VisitMode],
            "yes_no": [("true", _("Yes")), ("false", _("No"))],
            "item_rows": range(ITEM_ROWS),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/audits/new", response_class=HTMLResponse)
def new_visit(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: VisitRecorder,
    merchant: str | None = None,
) -> Response:
    values: dict[str, Any] = {"mode": VisitMode.MYSTERY_SHOPPER.value}
    values["currency"] = settings.default_currency
    values.update({f"items.{i}.benefit_honoured": "true" for i in range(ITEM_ROWS)})
    chosen = or_none(merchant)
    if chosen:  # from a merchant's page: its first open location, preselected
        place = alliance.get_merchant(uow, principal, chosen)
        open_locations = [loc for loc in place.locations if loc.active]
        if open_locations:
            values["location_id"] = open_locations[0].public_id
    return _record_form(request, uow, principal, Form("visit", values=values))


def _local(value: str, timezone: str) -> datetime | str:
    """A `datetime-local` value read in the location's zone; what was typed if it is no time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(timezone))


def _price(form: Form, name: str, currency: str | None) -> int | str | None:
    """A price typed in the currency's units ("12.50") as minor units; an error beside it if not."""
    typed = form.value(name).strip()
    if not typed:
        return None
    if currency is None:
        return typed  # the currency is wrong and said so; the price cannot be read yet
    try:
        return Money.parse(typed, currency).amount
    except ValueError:
        form.errors[name] = _("A price in %(currency)s, e.g. 12.50.", currency=currency)
        return typed


def _items(form: Form) -> tuple[list[dict[str, Any]], list[int]]:
    """The item rows filled in (a row left blank is no item), and the form row of each."""
    raw_currency = form.value("currency").strip().upper()
    currency = raw_currency if is_currency(raw_currency) and raw_currency != POINTS else None
    if currency is None and raw_currency:
        form.errors["currency"] = _("A currency code such as GBP.")
    items, rows = [], []
    for i in range(ITEM_ROWS):
        prefix = f"items.{i}."
        if not any(form.value(prefix + f).strip() for f in TYPED_ITEM_FIELDS):
            continue
        item: dict[str, Any] = {
            "description": form.value(prefix + "description").strip() or None,
            "currency": currency or raw_currency or None,
            "public_price_minor": _price(form, prefix + "public_price", currency),
            "alliance_price_minor": _price(form, prefix + "alliance_price", currency),
            "benefit_honoured": form.value(prefix + "benefit_honoured") or None,
        }
        items.append({k: v for k, v in item.items() if v is not None})
        rows.append(i)
    return items, rows


# The schema's names for an item's fields, as the form names them.
_ITEM_FIELD_NAMES = {
    "public_price_minor": "public_price",
    "alliance_price_minor": "alliance_price",
    "currency": None,  # one currency for the visit: its error sits by the currency field
}


def _item_errors_to_rows(form: Form, rows: list[int]) -> None:
    """Errors on the n-th item sent go beside the form row it came from."""
    for name in [n for n in form.errors if n.startswith("items.")]:
        parts = name.split(".")
        if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) >= len(rows):
            continue
        message = form.errors.pop(name)
        field = _ITEM_FIELD_NAMES.get(parts[2], parts[2])
        target = "currency" if field is None else f"items.{rows[int(parts[1])]}.{field}"
        form.errors.setdefault(target, message)
    if "items" in form.errors:  # no row filled in: say so by the first
        form.errors.setdefault("items.0.description", form.errors.pop("items"))


@router.post("/audits", response_class=HTMLResponse, dependencies=[CsrfChecked])
def record_visit(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: VisitRecorder,
    posted: PostedForm,
) -> Response:
    form = Form("visit", values=posted.typed())
    location_ref = form.value("location_id").strip()
    location = audits.location_by_public_id(uow, location_ref) if location_ref else None
    if location_ref and location is None:
        form.errors["location_id"] = _("Choose a location from the list.")
    body = nested(form.values, tuple(f for f in VISIT_FIELDS if f != "currency"))
    body["merchant_id"] = location.merchant.public_id if location else ""
    if "visited_at" in body:
        zone = location.timezone if location else settings.default_timezone
        body["visited_at"] = _local(str(body["visited_at"]), zone)
    body["items"], rows = _items(form)
    data = validate(AuditVisitIn, body, form)
    form.errors.pop("merchant_id", None)  # follows from the location, whose error is shown
    _item_errors_to_rows(form, rows)
    if data is None or form.errors:
        return _record_form(request, uow, principal, form, 422)
    try:
        visit = audits.record_visit(uow, principal, data)
    except Problem as problem:
        uow.rollback()
        form.absorb(problem, VISIT_FIELDS)
        return _record_form(request, uow, principal, form, problem.status)
    flash(
        request,
        _(
            "The visit to %(merchant)s is recorded: %(outcome)s.",
            merchant=visit.location.merchant.trading_name,
            outcome=words(visit.outcome),
        ),
    )
    return RedirectResponse(f"/console/audits/{visit.public_id}", status_code=303)


# -- one visit ---------------------------------------------------------------------------------


def _visit_page(
    request: Request,
    uow: UnitOfWork,
    settings: Settings,
    principal: Principal,
    visit: AuditVisit,
    *,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    today = lookups.bank_today(uow.clock.now(), settings)
    action = visit.corrective_action
    closer = (
        lookups.staff(uow, [action.closed_by_id]).get(action.closed_by_id or 0)
        if action is not None
        else None
    )
    may_close = (
        action is not None
        and action.status == CorrectiveActionStatus.OPEN
        and can(principal, P.VISITS_CLOSE)
        and alliance.current_manager_id(uow, visit.merchant_id) == principal.id
    )
    return render(
        request,
        "console/audit_visit.html",
        {
            "row": visit_rows(uow, [visit], today, show_auditor=True)[0],
            "closer": closer,
            "may_close": may_close,
            "form": form or Form("close"),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/audits/{visit_id}", response_class=HTMLResponse)
def visit_detail(
    visit_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: VisitReader,
) -> Response:
    visit = audits.get_visit(uow, principal, visit_id)
    return _visit_page(request, uow, settings, principal, visit)


@router.post("/audits/{visit_id}/close", response_class=HTMLResponse, dependencies=[CsrfChecked])
def close_action(
    visit_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: ActionCloser,
    posted: PostedForm,
) -> Response:
    visit = audits.get_visit(uow, principal, visit_id)
    form = Form("close", values=posted.typed())
    data = validate(CorrectiveActionIn, nested(form.values, ("resolution",)), form)
    action = visit.corrective_action
    if action is None:
        form.problem = _("This visit passed: it has no corrective action to close.")
    if data is None or action is None:
        return _visit_page(request, uow, settings, principal, visit, form=form, status_code=422)
    try:
        audits.close_action(uow, principal, action, data.resolution)
    except Problem as problem:
        uow.rollback()
        uow.session.refresh(visit)
        form.absorb(problem, ("resolution",))
        return _visit_page(
            request, uow, settings, principal, visit, form=form, status_code=problem.status
        )
    flash(request, _("The corrective action is closed."))
    return RedirectResponse(f"/console/audits/{visit.public_id}", status_code=303)
