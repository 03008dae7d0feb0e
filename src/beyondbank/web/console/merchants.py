"""Merchant pages: the list with filters, and a merchant's file (profile, locations and terminals,
settlement account, contacts, seats, applications with each check, benefits, its relationship
manager and interaction log, its audit visits with their findings charted), with the lifecycle,
manager and interaction forms."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import admission, audits, lifecycle, merchants, people, relationships
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import InteractionKind, KybStatus, Merchant, MerchantStatus
from beyondbank.alliance.schemas import (
    InteractionIn,
    KybResultIn,
    LicenceVerificationIn,
    ManagerIn,
    TransitionIn,
)
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.benefits import rules
from beyondbank.benefits import service as benefits
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.errors import Problem
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web import lookups
from beyondbank.web.console import views
from beyondbank.web.console.guards import (
    LifecycleManager,
    ManagerAssigner,
    MerchantReader,
    RelationshipWriter,
)
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _, format_locale
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash
from beyondbank.web.templating import words
from beyondbank.web.visits import findings_bars, visit_rows

router = APIRouter(prefix="/console", include_in_schema=False)

P = Permission
PAGE_SIZE = 50
SECTION_ROWS = 50
INTERACTION_FIELDS = ("kind", "occurred_at", "notes", "next_action", "next_action_on")


# -- the list ----------------------------------------------------------------------------------


@router.get("/merchants", response_class=HTMLResponse)
def merchant_list(
    request: Request,
    uow: UoW,
    principal: MerchantReader,
    status: str | None = None,
    domain: str | None = None,
    sub_industry: str | None = None,
    circle: str | None = None,
    q: str | None = None,
    mine: str | None = None,
    cursor: str | None = None,
) -> Response:
    sub = or_none(sub_industry)
    if sub is not None and taxonomy().sub_industry(sub) is None:
        sub = None  # not a sub-industry: the filter list offers only real ones
    circle_ref = or_none(circle)
    circle_row = alliance.get_circle(uow, circle_ref, field="query.circle") if circle_ref else None
    filters = merchants.MerchantFilter(
        status=choice(MerchantStatus, status, "query.status"),
        domain=choice(LifeDomain, domain, "query.domain"),
        sub_industry=sub,
        circle_id=circle_row.id if circle_row else None,
        manager_id=principal.id if mine and can(principal, P.RELATIONSHIP_READ) else None,
        text=(or_none(q) or "")[:100] or None,
    )
    rows, next_cursor = merchants.list_merchants(
        uow, principal, filters, cursor=or_none(cursor), limit=PAGE_SIZE
    )
    chosen = {
        "status": status or "",
        "domain": domain or "",
        "sub_industry": sub_industry or "",
        "circle": circle or "",
        "q": q or "",
        "mine": mine or "",
    }
    return render(
        request,
        "console/merchants.html",
        {
            "merchants": rows,
            "filters": chosen,
            "statuses": list(MerchantStatus),
            "domains": taxonomy().domains,
            "circles": lookups.all_circles(uow),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({k: v for k, v in chosen.items() if v}),
        },
        principal=principal,
    )


# -- one merchant ------------------------------------------------------------------------------


def _blank_forms() -> dict[str, Form]:
    return {name: Form(name) for name in ("transition", "manager", "kyb", "licence")}


def _merchant_page(
    request: Request,
    uow: UnitOfWork,
    settings: Settings,
    principal: Principal,
    merchant: Merchant,
    *,
    forms: dict[str, Form] | None = None,
    status_code: int = 200,
) -> Response:
    today = lookups.bank_today(uow.clock.now(), settings)
    shown = _blank_forms()
    shown.update(forms or {})
    circles_by_id = {c.id: c for c in lookups.all_circles(uow)}
    context: dict[str, Any] = {
        "merchant": merchant,
        "private": can(principal, P.MERCHANT_CONTACTS_READ),
        "seats": [
            (seat, circles_by_id[seat.circle_id])
            for seat in alliance.held_seats(uow, merchant_id=merchant.id)
        ],
        "next_statuses": sorted(lifecycle.allowed_next(merchant.status)),
        "status_options": [
            (s.value, words(s)) for s in sorted(lifecycle.allowed_next(merchant.status))
        ],
        "forms": shown,
        "applications": [],
        "benefit_rows": [],
        "manager": None,
        "assignments": [],
        "interactions": [],
        "more_interactions": False,
        "manager_options": [],
        "kyb_results": [KybStatus.PASSED, KybStatus.FAILED],
        "price_checks": {},
        "changes": [],
        "visits": [],
        "more_visits": False,
        "visit_bars": [],
        "visit_counts": {},
    }
    if can(principal, P.APPLICATIONS_READ):
        applications, _next = admission.list_applications(
            uow,
            principal,
            status=None,
            circle_id=None,
            merchant_id=merchant.id,
            sub_industry=None,
            cursor=None,
            limit=SECTION_ROWS,
        )
        context["applications"] = applications
    if can(principal, P.BENEFITS_READ):
        rows, _next = benefits.list_benefits(
            uow, principal, merchant_id=merchant.public_id, cursor=None, limit=SECTION_ROWS
        )
        context["benefit_rows"] = [
            (b, rules.describe_reward(benefits.reward_of(b), b.currency)) for b in rows
        ]
        # The price integrity check of each benefit: the bank's audit of its declared prices.
        context["price_checks"] = {b.id: benefits.price_verdict(b) for b in rows}
    if can(principal, P.RELATIONSHIP_READ):
        history = relationships.assignments(uow, merchant)
        staff = lookups.staff(uow, (a.manager_id for a in history))
        context["assignments"] = [(a, staff[a.manager_id]) for a in history]
        current = next((a for a in history if a.ended_at is None), None)
        context["manager"] = staff[current.manager_id] if current else None
        logged, more = relationships.list_interactions(uow, merchant, cursor=None, limit=20)
        context["interactions"] = views.interaction_rows(uow, logged, today)
        context["more_interactions"] = more is not None
    if can(principal, P.VISITS_READ):
        context.update(_visits(uow, principal, merchant, today))
    if can(principal, P.AUDIT_READ):
        changes, _next = audit.trail(
            uow.session,
            audit.TrailFilter(object_type="merchant", object_id=merchant.public_id),
            cursor=None,
            limit=SECTION_ROWS,
        )
        context["changes"] = changes
    if can(principal, P.RELATIONSHIP_ASSIGN):
        context["manager_options"] = [
            (user.public_id, f"{user.name} ({user.email})")
            for user in lookups.relationship_managers(uow)
        ]
    return render(
        request, "console/merchant.html", context, principal=principal, status_code=status_code
    )


VISIT_ROWS = 10


def _visits(
    uow: UnitOfWork, principal: Principal, merchant: Merchant, today: date
) -> dict[str, Any]:
    """The merchant's latest visits, the findings at each (a chart, oldest first) and the count of
    each outcome."""
    latest, more = audits.list_visits(
        uow, principal, audits.VisitFilter(merchant_id=merchant.id), cursor=None, limit=VISIT_ROWS
    )
    return {
        "visits": visit_rows(uow, latest, today, show_auditor=True),
        "more_visits": more is not None,
        "visit_bars": findings_bars(audits.visit_history(uow, merchant), format_locale()),
        "visit_counts": audits.outcome_counts(uow, merchant),
    }


@router.get("/merchants/{merchant_id}", response_class=HTMLResponse)
def merchant_detail(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: MerchantReader,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    return _merchant_page(request, uow, settings, principal, merchant)


def _refused(
    request: Request,
    uow: UnitOfWork,
    settings: Settings,
    principal: Principal,
    merchant: Merchant,
    form: Form,
    problem: Problem | None = None,
    fields: tuple[str, ...] = (),
) -> Response:
    """The merchant's page again, with the form's errors (or the service's problem) shown."""
    if problem is not None:
        uow.rollback()
        uow.session.refresh(merchant)
        form.absorb(problem, fields)
    return _merchant_page(
        request,
        uow,
        settings,
        principal,
        merchant,
        forms={form.name: form},
        status_code=problem.status if problem is not None else 422,
    )


@router.post(
    "/merchants/{merchant_id}/transitions", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def change_status(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: LifecycleManager,
    posted: PostedForm,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    form = Form("transition", values=posted.typed())
    data = validate(TransitionIn, nested(form.values, ("to", "reason")), form)
    if data is None:
        return _refused(request, uow, settings, principal, merchant, form)
    before = merchant.status
    try:
        merchants.change_status(uow, principal, merchant, data.to, data.reason)
    except Problem as problem:
        return _refused(
            request, uow, settings, principal, merchant, form, problem, ("to", "reason")
        )
    flash(
        request,
        _(
            "%(name)s moved from %(before)s to %(after)s.",
            name=merchant.trading_name,
            before=words(before),
            after=words(data.to),
        ),
    )
    return RedirectResponse(f"/console/merchants/{merchant.public_id}", status_code=303)


@router.post(
    "/merchants/{merchant_id}/kyb", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def record_kyb(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: LifecycleManager,
    posted: PostedForm,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    form = Form("kyb", values=posted.typed())
    data = validate(KybResultIn, nested(form.values, ("result", "note")), form)
    if data is None:
        return _refused(request, uow, settings, principal, merchant, form)
    try:
        merchants.record_kyb(uow, principal, merchant, result=data.result, note=data.note)
    except Problem as problem:
        return _refused(request, uow, settings, principal, merchant, form, problem)
    flash(request, _("KYB result recorded: %(result)s.", result=words(data.result)))
    return RedirectResponse(f"/console/merchants/{merchant.public_id}#verification", 303)


@router.post(
    "/merchants/{merchant_id}/licence", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def record_licence(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: LifecycleManager,
    posted: PostedForm,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    form = Form("licence", values=posted.typed())
    data = validate(LicenceVerificationIn, nested(form.values, ("verified", "note")), form)
    if data is None:
        return _refused(request, uow, settings, principal, merchant, form)
    try:
        merchants.record_licence_verification(
            uow, principal, merchant, verified=data.verified, note=data.note
        )
    except Problem as problem:
        return _refused(request, uow, settings, principal, merchant, form, problem)
    message = _("Licence verified.") if data.verified else _("Licence recorded as not verified.")
    flash(request, message)
    return RedirectResponse(f"/console/merchants/{merchant.public_id}#verification", 303)


@router.post(
    "/merchants/{merchant_id}/manager", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def assign_manager(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: ManagerAssigner,
    posted: PostedForm,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    form = Form("manager", values=posted.typed())
    data = validate(ManagerIn, nested(form.values, ("manager_id",)), form)
    if data is None:
        return _refused(request, uow, settings, principal, merchant, form)
    try:
        relationships.assign_manager(uow, principal, merchant, data.manager_id)
    except Problem as problem:
        return _refused(request, uow, settings, principal, merchant, form, problem, ("manager_id",))
    manager = people.user_by_public_id(uow, data.manager_id)
    flash(
        request,
        _(
            "%(manager)s now looks after %(merchant)s.",
            manager=manager.name,
            merchant=merchant.trading_name,
        ),
    )
    return RedirectResponse(f"/console/merchants/{merchant.public_id}#relationship", 303)


# -- logging an interaction --------------------------------------------------------------------


def _local_now(now: datetime, settings: Settings) -> str:
    """Now in the bank's time zone, as a `datetime-local` field shows it."""
    return now.astimezone(ZoneInfo(settings.default_timezone)).strftime("%Y-%m-%dT%H:%M")


def _interaction_form(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    merchant: Merchant,
    form: Form,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "console/interaction_form.html",
        {
            "merchant": merchant,
            "form": form,
            "kinds": [(k.value, words(k).capitalize()) for k in InteractionKind],
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/merchants/{merchant_id}/interactions/new", response_class=HTMLResponse)
def new_interaction(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: RelationshipWriter,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    form = Form(
        "interaction",
        values={"kind": "visit", "occurred_at": _local_now(uow.clock.now(), settings)},
    )
    return _interaction_form(request, uow, principal, merchant, form)


def aware(value: str, timezone: str) -> datetime | str:
    """A `datetime-local` value read in the bank's time zone; what was typed if it is no time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(timezone))


@router.post(
    "/merchants/{merchant_id}/interactions",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def log_interaction(
    merchant_id: str,
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: RelationshipWriter,
    posted: PostedForm,
) -> Response:
    merchant = alliance.get_merchant(uow, principal, merchant_id)
    form = Form("interaction", values=posted.typed())
    body = nested(form.values, INTERACTION_FIELDS)
    if "occurred_at" in body:
        body["occurred_at"] = aware(str(body["occurred_at"]), settings.default_timezone)
    # A blank due date is sent as null, as an API client would, so that a next action without
    # its date is refused by the schema's own check.
    body.setdefault("next_action_on", None)
    data = validate(InteractionIn, body, form)
    if data is None:
        return _interaction_form(request, uow, principal, merchant, form, 422)
    try:
        relationships.log_interaction(uow, principal, merchant, data)
    except Problem as problem:
        form.absorb(problem, INTERACTION_FIELDS)
        return _interaction_form(request, uow, principal, merchant, form, problem.status)
    flash(
        request,
        _(
            "The %(kind)s with %(merchant)s is in the log.",
            kind=words(data.kind),
            merchant=merchant.trading_name,
        ),
    )
    return RedirectResponse(f"/console/merchants/{merchant.public_id}#relationship", 303)
