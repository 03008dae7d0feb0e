"""The merchant pipeline: applications by status, an application's requirement checks with their
reasons, manual confirmations, approval (the uniqueness conflict explained when the slot is
taken) and rejection, the waitlists per slot, and the waitlist offers made to me."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import admission
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    Circle,
    RequirementKind,
    Seat,
    WaitlistStatus,
)
from beyondbank.alliance.schemas import CheckConfirmationIn, DecisionIn
from beyondbank.core.authz import Permission, Principal, Role, can
from beyondbank.core.errors import Problem, SlotTaken
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW
from beyondbank.web import lookups
from beyondbank.web.console import views
from beyondbank.web.console.guards import ApplicationReader, Decider
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash
from beyondbank.web.templating import sub_industry_name

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
# The pipeline's tabs, in the order work flows through it.
PIPELINE = (
    ApplicationStatus.UNDER_REVIEW,
    ApplicationStatus.SUBMITTED,
    ApplicationStatus.WAITLISTED,
    ApplicationStatus.APPROVED,
    ApplicationStatus.REJECTED,
    ApplicationStatus.WITHDRAWN,
)


# -- the pipeline ------------------------------------------------------------------------------


@router.get("/applications", response_class=HTMLResponse)
def pipeline(
    request: Request,
    uow: UoW,
    principal: ApplicationReader,
    status: str | None = None,
    circle: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = choice(ApplicationStatus, status, "query.status")
    if status is None:
        chosen = ApplicationStatus.UNDER_REVIEW  # the queue to work on, unless asked otherwise
    circle_ref = or_none(circle)
    circle_row = alliance.get_circle(uow, circle_ref, field="query.circle") if circle_ref else None
    rows, next_cursor = admission.list_applications(
        uow,
        principal,
        status=chosen,
        circle_id=circle_row.id if circle_row else None,
        merchant_id=None,
        sub_industry=None,
        cursor=or_none(cursor),
        limit=PAGE_SIZE,
    )
    query = {"status": chosen.value if chosen else ""}
    if circle_row:
        query["circle"] = circle_row.public_id
    return render(
        request,
        "console/applications.html",
        {
            "applications": rows,
            "status": chosen,
            "tabs": PIPELINE,
            "circle": circle_row,
            "circles": lookups.all_circles(uow),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode(query),
        },
        principal=principal,
    )


@dataclass(frozen=True, slots=True)
class SlotQueue:
    """One slot someone waits for: the circle, the sub-industry, who holds it, and the queue."""

    circle: Circle
    sub_industry: str
    holder: Seat | None
    rows: list[views.WaitlistRow]


@router.get("/applications/waitlists", response_class=HTMLResponse)
def waitlists(request: Request, uow: UoW, principal: ApplicationReader) -> Response:
    """Every slot someone is waiting for, with its queue in order and who holds the slot."""
    waiting, _capped = lookups.every(
        lambda cursor: admission.list_applications(
            uow,
            principal,
            status=ApplicationStatus.WAITLISTED,
            circle_id=None,
            merchant_id=None,
            sub_industry=None,
            cursor=cursor,
            limit=200,
        ),
        cap=5_000,
    )
    holders = {(seat.circle_id, seat.sub_industry): seat for seat in alliance.held_seats(uow)}
    queues: list[SlotQueue] = []
    for circle in sorted({a.circle for a in waiting}, key=lambda c: (c.name, c.id)):
        by_slot: dict[str, list[views.WaitlistRow]] = defaultdict(list)
        for row in views.waitlist_rows(uow, admission.slot_waitlist(uow, principal, circle, None)):
            by_slot[row.sub_industry].append(row)
        queues.extend(
            SlotQueue(circle, slot, holders.get((circle.id, slot)), rows)
            for slot, rows in sorted(by_slot.items())
        )
    return render(request, "console/waitlists.html", {"queues": queues}, principal=principal)


# -- offers for me -----------------------------------------------------------------------------


def _offers_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    forms: dict[str, Form] | None = None,
    status_code: int = 200,
) -> Response:
    offers = views.waitlist_rows(uow, admission.offers_for(uow, principal))
    return render(
        request,
        "console/offers.html",
        {"offers": offers, "forms": forms or {}, "blank": Form},
        principal=principal,
        status_code=status_code,
    )


@router.get("/applications/offers", response_class=HTMLResponse)
def my_offers(request: Request, uow: UoW, principal: Decider) -> Response:
    return _offers_page(request, uow, principal)


@router.post(
    "/applications/offers/{application_id}/{answer}",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def answer_offer(
    application_id: str,
    answer: str,
    request: Request,
    uow: UoW,
    principal: Decider,
    posted: PostedForm,
) -> Response:
    """Accept (the merchant takes the freed seat) or decline (the next in line gets the offer)."""
    if answer not in ("accept", "decline"):
        raise Problem(_("Answer an offer with accept or decline."))
    application = alliance.get_application(uow, principal, application_id)
    form = Form(f"{answer}-{application_id}", values=posted.typed())
    data = validate(DecisionIn, nested(form.values, ("reason",)), form)
    if data is None:
        return _offers_page(request, uow, principal, {form.name: form}, 422)
    try:
        if answer == "accept":
            admission.approve(uow, principal, application, data.reason)
        else:
            admission.reject(uow, principal, application, data.reason)
    except Problem as problem:
        if not isinstance(problem, SlotTaken):
            uow.rollback()
        form.absorb(problem, ("reason",))
        return _offers_page(request, uow, principal, {form.name: form}, problem.status)
    merchant, circle = application.merchant.trading_name, application.circle.name
    if answer == "accept":
        flash(
            request,
            _("%(merchant)s now holds its seat in %(circle)s.", merchant=merchant, circle=circle),
        )
    else:
        flash(
            request,
            _(
                "Offer declined for %(merchant)s; the slot goes to the next merchant waiting, if any.",
                merchant=merchant,
            ),
        )
    return RedirectResponse("/console/applications/offers", status_code=303)


# -- one application ---------------------------------------------------------------------------


def _decision_forms(application: Application) -> dict[str, Form]:
    forms = {name: Form(name) for name in ("approve", "reject", "recheck")}
    for check in application.checks:
        forms[f"confirm-{check.public_id}"] = Form(f"confirm-{check.public_id}")
    return forms


def slot_conflict(uow: UnitOfWork, application: Application, problem: SlotTaken) -> dict[str, Any]:
    """The uniqueness conflict in words: who holds the slot (or who was offered it first), and
    where this application now waits."""
    holder = problem.extra.get("holder") or {}
    return {
        "slot": sub_industry_name(application.sub_industry),
        "circle": application.circle.name,
        "circle_id": application.circle.public_id,
        "holder": holder.get("name"),
        "holder_id": holder.get("merchant_id"),
        "position": problem.extra.get("waitlist_position"),
        "detail": problem.detail,
    }


def _application_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    application: Application,
    *,
    forms: dict[str, Form] | None = None,
    conflict: dict[str, Any] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    shown = _decision_forms(application)
    shown.update(forms or {})
    entry = admission.waitlist_entry(uow, application)
    waitlist = views.waitlist_rows(uow, [entry])[0] if entry else None
    staff = lookups.staff(
        uow, [application.decided_by_id, *(c.confirmed_by_id for c in application.checks)]
    )
    open_ = application.status in admission.OPEN_APPLICATIONS
    offered = waitlist is not None and waitlist.status == WaitlistStatus.OFFERED
    may_decide = can(principal, Permission.APPLICATIONS_DECIDE) and open_
    if offered and waitlist is not None:
        # An offer is decided by the manager it was made to (or a bank admin).
        may_decide = may_decide and (
            waitlist.offered_to_id == principal.id or principal.role == Role.BANK_ADMIN
        )
    holder = alliance.slot_holder(uow, application.circle_id, application.sub_industry)
    return render(
        request,
        "console/application.html",
        {
            "application": application,
            "checks": application.checks,
            "staff": staff,
            "waitlist": waitlist,
            "holder": holder,
            "open": open_,
            "may_decide": may_decide,
            "may_approve": may_decide
            and (application.status != ApplicationStatus.WAITLISTED or offered),
            "manual": RequirementKind.MANUAL_CHECK,
            "slot_free": RequirementKind.SLOT_FREE,
            "forms": shown,
            "conflict": conflict,
            # Once decided, the decision forms are gone: the problem shows at the top instead.
            "page_problem": problem if not may_decide else None,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/applications/{application_id}", response_class=HTMLResponse)
def application_detail(
    application_id: str, request: Request, uow: UoW, principal: ApplicationReader
) -> Response:
    application = alliance.get_application(uow, principal, application_id)
    return _application_page(request, uow, principal, application)


def _failed(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    application: Application,
    form: Form,
    problem: Problem,
    fields: tuple[str, ...],
) -> Response:
    """The page again with the service's problem in words. A `SlotTaken` was committed (the
    application joined the waitlist); anything else is rolled back before the page is read."""
    conflict = None
    if isinstance(problem, SlotTaken):
        conflict = slot_conflict(uow, application, problem)
    else:
        uow.rollback()
        form.absorb(problem, fields)
    return _application_page(
        request,
        uow,
        principal,
        application,
        forms={form.name: form},
        conflict=conflict,
        problem=None if conflict else problem.detail,
        status_code=problem.status,
    )


@router.post(
    "/applications/{application_id}/approve",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def approve(
    application_id: str, request: Request, uow: UoW, principal: Decider, posted: PostedForm
) -> Response:
    application = alliance.get_application(uow, principal, application_id)
    form = Form("approve", values=posted.typed())
    data = validate(DecisionIn, nested(form.values, ("reason",)), form)
    if data is None:
        return _application_page(
            request, uow, principal, application, forms={"approve": form}, status_code=422
        )
    try:
        admission.approve(uow, principal, application, data.reason)
    except Problem as problem:
        return _failed(request, uow, principal, application, form, problem, ("reason",))
    flash(
        request,
        _(
            "Approved: %(merchant)s now holds the %(slot)s slot in %(circle)s.",
            merchant=application.merchant.trading_name,
            slot=sub_industry_name(application.sub_industry),
            circle=application.circle.name,
        ),
    )
    return RedirectResponse(f"/console/applications/{application.public_id}", status_code=303)


@router.post(
    "/applications/{application_id}/reject",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def reject(
    application_id: str, request: Request, uow: UoW, principal: Decider, posted: PostedForm
) -> Response:
    application = alliance.get_application(uow, principal, application_id)
    form = Form("reject", values=posted.typed())
    data = validate(DecisionIn, nested(form.values, ("reason",)), form)
    if data is None:
        return _application_page(
            request, uow, principal, application, forms={"reject": form}, status_code=422
        )
    try:
        admission.reject(uow, principal, application, data.reason)
    except Problem as problem:
        return _failed(request, uow, principal, application, form, problem, ("reason",))
    flash(request, _("Application rejected; the merchant's file records the reason."))
    return RedirectResponse(f"/console/applications/{application.public_id}", status_code=303)


@router.post(
    "/applications/{application_id}/checks/run",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def run_checks(application_id: str, request: Request, uow: UoW, principal: Decider) -> Response:
    application = alliance.get_application(uow, principal, application_id)
    try:
        admission.recheck(uow, principal, application)
    except Problem as problem:
        return _failed(request, uow, principal, application, Form("recheck"), problem, ())
    flash(request, _("The admission requirements were checked again."))
    return RedirectResponse(f"/console/applications/{application.public_id}", status_code=303)


@router.post(
    "/applications/{application_id}/checks/{check_id}/confirm",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def confirm_check(
    application_id: str,
    check_id: str,
    request: Request,
    uow: UoW,
    principal: Decider,
    posted: PostedForm,
) -> Response:
    application = alliance.get_application(uow, principal, application_id)
    form = Form(f"confirm-{check_id}", values=posted.typed())
    data = validate(CheckConfirmationIn, nested(form.values, ("passed", "note")), form)
    if data is None:
        return _application_page(
            request, uow, principal, application, forms={form.name: form}, status_code=422
        )
    try:
        admission.confirm_check(
            uow, principal, application, check_id, passed=data.passed, note=data.note
        )
    except Problem as problem:
        return _failed(request, uow, principal, application, form, problem, ("passed", "note"))
    message = _("Check confirmed.") if data.passed else _("Check recorded as not met.")
    flash(request, message)
    return RedirectResponse(f"/console/applications/{application.public_id}", status_code=303)
