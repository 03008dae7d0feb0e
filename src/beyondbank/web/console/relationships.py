"""Relationship management: open follow-ups (overdue first), my merchants with a way to log an
interaction, marking a follow-up done, and the bank admin assigning relationship managers."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance import people, relationships
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Interaction
from beyondbank.alliance.schemas import ManagerIn
from beyondbank.core.authz import Permission, Principal, Role, can
from beyondbank.core.errors import Conflict, NotFound, Problem, invalid
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web import lookups
from beyondbank.web.console import views
from beyondbank.web.console.guards import ManagerAssigner, RelationshipReader, RelationshipWriter
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.routes import safe_next
from beyondbank.web.session import CsrfChecked, flash

router = APIRouter(prefix="/console", include_in_schema=False)

P = Permission
FOLLOW_UP_CAP = 1_000
MERCHANT_OPTIONS = 1_000
MINE, EVERYONE = "mine", "everyone"


def _whose(principal: Principal, whose: str | None) -> str:
    """Whose follow-ups to show: a relationship manager sees their own; other staff choose."""
    if principal.role == Role.RELATIONSHIP_MANAGER:
        return MINE
    if whose:
        return whose
    return MINE if can(principal, P.RELATIONSHIP_WRITE) else EVERYONE


def _manager_id(uow: UnitOfWork, principal: Principal, whose: str) -> int | None:
    if whose == MINE:
        return principal.id
    if whose == EVERYONE:
        return None
    try:
        return people.user_by_public_id(uow, whose).id
    except Problem:
        raise invalid("query.whose", "no such relationship manager") from None


def open_follow_ups(
    uow: UnitOfWork, principal: Principal, manager_id: int | None, today: date
) -> tuple[list[Interaction], bool]:
    """Open follow-ups, overdue first, each group by due date."""
    rows, capped = lookups.every(
        lambda cursor: relationships.follow_ups(
            uow,
            principal,
            manager_id=manager_id,
            overdue=False,
            today=today,
            cursor=cursor,
            limit=MAX_LIMIT,
        ),
        cap=FOLLOW_UP_CAP,
    )
    ordered = sorted(
        rows,
        key=lambda i: (not relationships.is_overdue(i, today), i.next_action_on or today, i.id),
    )
    return ordered, capped


def _page(
    request: Request,
    uow: UnitOfWork,
    settings: Settings,
    principal: Principal,
    whose: str | None,
    *,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    today = lookups.bank_today(uow.clock.now(), settings)
    chosen = _whose(principal, whose)
    rows, capped = open_follow_ups(uow, principal, _manager_id(uow, principal, chosen), today)
    context: dict[str, Any] = {
        "follow_ups": views.interaction_rows(uow, rows, today, viewer_id=principal.id),
        "capped": capped,
        "today": today,
        "whose": chosen,
        "whose_options": [],
        "my_merchants": [],
        "form": form or Form("assign"),
        "merchant_options": [],
        "manager_options": [],
    }
    managers = lookups.relationship_managers(uow)
    if principal.role != Role.RELATIONSHIP_MANAGER:
        options = [(EVERYONE, _("Everyone's"))]
        if can(principal, P.RELATIONSHIP_WRITE):
            options.insert(0, (MINE, _("Mine")))
        context["whose_options"] = options + [(m.public_id, m.name) for m in managers]
    if can(principal, P.RELATIONSHIP_WRITE):
        mine, _more = merchant_cases.list_merchants(
            uow,
            principal,
            merchant_cases.MerchantFilter(manager_id=principal.id),
            cursor=None,
            limit=MAX_LIMIT,
        )
        context["my_merchants"] = mine
    if can(principal, P.RELATIONSHIP_ASSIGN):
        merchants, _capped = lookups.every(
            lambda cursor: merchant_cases.list_merchants(
                uow, principal, merchant_cases.MerchantFilter(), cursor=cursor, limit=MAX_LIMIT
            ),
            cap=MERCHANT_OPTIONS,
        )
        context["merchant_options"] = sorted(
            ((m.public_id, m.trading_name) for m in merchants), key=lambda o: o[1].lower()
        )
        context["manager_options"] = [(m.public_id, f"{m.name} ({m.email})") for m in managers]
    return render(
        request,
        "console/relationships.html",
        context,
        principal=principal,
        status_code=status_code,
    )


@router.get("/relationships", response_class=HTMLResponse)
def follow_up_page(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: RelationshipReader,
    whose: str | None = None,
) -> Response:
    return _page(request, uow, settings, principal, whose)


@router.post(
    "/interactions/{interaction_id}/follow-up-done",
    response_class=HTMLResponse,
    dependencies=[CsrfChecked],
)
def follow_up_done(
    interaction_id: str,
    request: Request,
    uow: UoW,
    principal: RelationshipWriter,
    posted: PostedForm,
) -> Response:
    interaction = relationships.get_interaction(uow, principal, interaction_id)
    back = safe_next(posted.get("back")) or "/console/relationships"
    try:
        relationships.complete_follow_up(uow, principal, interaction)
    except Conflict as problem:  # done already, or nothing to follow up: say so where they were
        flash(request, problem.detail, kind="error")
        return RedirectResponse(back, status_code=303)
    flash(request, _("Follow-up marked done: %(action)s", action=interaction.next_action or ""))
    return RedirectResponse(back, status_code=303)


@router.post("/relationships/assign", response_class=HTMLResponse, dependencies=[CsrfChecked])
def assign(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: ManagerAssigner,
    posted: PostedForm,
) -> Response:
    form = Form("assign", values=posted.typed())
    merchant_id = posted.get("merchant_id").strip()
    if not merchant_id:
        form.errors["merchant_id"] = _("Choose the merchant.")
    data = validate(ManagerIn, nested(form.values, ("manager_id",)), form)
    if data is None or form.errors:
        return _page(request, uow, settings, principal, None, form=form, status_code=422)
    try:
        merchant = alliance.get_merchant(uow, principal, merchant_id, field="merchant_id")
        relationships.assign_manager(uow, principal, merchant, data.manager_id)
    except Problem as problem:
        uow.rollback()
        form.absorb(problem, ("merchant_id", "manager_id"))
        status = (
            422 if isinstance(problem, NotFound) else problem.status
        )  # a bad choice, not a page
        return _page(request, uow, settings, principal, None, form=form, status_code=status)
    manager = people.user_by_public_id(uow, data.manager_id)
    flash(
        request,
        _(
            "%(manager)s now looks after %(merchant)s.",
            manager=manager.name,
            merchant=merchant.trading_name,
        ),
    )
    return RedirectResponse("/console/relationships", status_code=303)
