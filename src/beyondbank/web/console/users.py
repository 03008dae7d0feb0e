"""The users page for the bank admin: everyone who signs in with a password, by role and status,
with their organisation and last sign-in; creating a staff user, and deactivating or reactivating
one, or giving them another role of the same kind (the identity service checks and audits each
change)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import service as alliance
from beyondbank.commerce import service as commerce
from beyondbank.core.authz import STAFF_ROLES, Principal, Role
from beyondbank.core.errors import Problem, invalid
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW
from beyondbank.identity import service as identity
from beyondbank.identity.models import User
from beyondbank.identity.schemas import UserIn
from beyondbank.web.console.guards import UserManager
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash
from beyondbank.web.templating import words

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
USER_FIELDS = ("email", "name", "role", "password")
# The order the role filter and the form list roles in: the bank's own first.
STAFF_ORDER = (Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR, Role.ANALYST)
ROLE_ORDER = (
    *STAFF_ORDER,
    Role.MERCHANT_ADMIN,
    Role.MERCHANT_STAFF,
    Role.PARTNER_ADMIN,
    Role.PARTNER_STAFF,
)
STATUSES = ("active", "inactive")


@dataclass(frozen=True, slots=True)
class UserRow:
    user: User
    organisation: str | None  # the merchant's or partner's name; None for the bank's staff
    organisation_href: str | None
    is_me: bool
    roles: tuple[Role, ...]  # the roles this user may be given: those of the same kind


def same_kind_roles(role: Role) -> tuple[Role, ...]:
    """A bank role changes to another bank role, a merchant's to a merchant's, a partner's to a
    partner's (the identity service refuses anything else)."""
    for family in (STAFF_ORDER, ROLE_ORDER[4:6], ROLE_ORDER[6:8]):
        if role in family:
            return family
    return (role,)


def user_rows(uow: UnitOfWork, principal: Principal, users: list[User]) -> list[UserRow]:
    """The users with their organisations' names: two lookups for the whole list."""
    merchants = alliance.merchants_by_ids(uow, {u.merchant_id for u in users if u.merchant_id})
    partners = commerce.partner_names(uow, {u.partner_id for u in users if u.partner_id})
    rows = []
    for user in users:
        organisation, href = None, None
        if user.merchant_id is not None and user.merchant_id in merchants:
            merchant = merchants[user.merchant_id]
            organisation, href = merchant.trading_name, f"/console/merchants/{merchant.public_id}"
        elif user.partner_id is not None:
            organisation = partners.get(user.partner_id)
        is_me = user.id == principal.id
        rows.append(UserRow(user, organisation, href, is_me, same_kind_roles(user.role)))
    return rows


def _users_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    *,
    role: str | None,
    status: str | None,
    cursor: str | None,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    chosen = choice(Role, role, "query.role")
    if status not in (None, "", *STATUSES):
        raise invalid("query.status", "not one of: " + ", ".join(STATUSES))
    active = {"active": True, "inactive": False}.get(status or "")
    users, next_cursor = identity.list_users(
        uow, principal, role=chosen, active=active, cursor=or_none(cursor), limit=PAGE_SIZE
    )
    return render(
        request,
        "console/users.html",
        {
            "rows": user_rows(uow, principal, users),
            "filters": {"role": role or "", "status": status or ""},
            "roles": list(ROLE_ORDER),
            "staff_roles": [(r.value, words(r)) for r in STAFF_ORDER],
            "statuses": STATUSES,
            "form": form or Form("user", values={"role": Role.ANALYST.value}),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({k: v for k, v in (("role", role), ("status", status)) if v}),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/users", response_class=HTMLResponse)
def users_list(
    request: Request,
    uow: UoW,
    principal: UserManager,
    role: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    return _users_page(request, uow, principal, role=role, status=status, cursor=cursor)


@router.post("/users", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_staff_user(
    request: Request, uow: UoW, principal: UserManager, posted: PostedForm
) -> Response:
    form = Form("user", values=posted.typed())
    data = validate(
        UserIn,
        nested(form.values, USER_FIELDS),
        form,
        messages={
            "email": _("Give an email address, e.g. name@bank.example."),
            "password:string_too_short": _("Use at least 12 characters."),
            "role": _("Choose one of the bank's staff roles."),
        },
    )
    if data is not None and data.role not in STAFF_ROLES:
        # Merchant and partner users belong to their organisation: created from its own pages.
        form.errors["role"] = _("Choose one of the bank's staff roles.")
    form.values.pop("password", None)  # a password is never written back into a page
    if data is None or form.errors:
        return _users_page(
            request,
            uow,
            principal,
            role=None,
            status=None,
            cursor=None,
            form=form,
            status_code=422,
        )
    try:
        user = identity.create_user(
            uow,
            principal,
            email=data.email,
            name=data.name,
            role=data.role,
            merchant_id=None,
            password=data.password,
        )
    except Problem as problem:
        form.absorb(problem, USER_FIELDS)
        if problem.status == 409:
            form.errors.setdefault("email", problem.detail)
        return _users_page(
            request,
            uow,
            principal,
            role=None,
            status=None,
            cursor=None,
            form=form,
            status_code=problem.status,
        )
    flash(request, _("%(name)s can now sign in as %(email)s.", name=user.name, email=user.email))
    return RedirectResponse("/console/users", status_code=303)


@router.post("/users/{user_id}/status", response_class=HTMLResponse, dependencies=[CsrfChecked])
def change_status(
    user_id: str, request: Request, uow: UoW, principal: UserManager, posted: PostedForm
) -> Response:
    user = identity.get_user(uow, user_id)
    wanted = posted.get("active")
    if wanted not in ("true", "false"):
        flash(request, _("Choose to deactivate or reactivate the user."), "error")
        return RedirectResponse("/console/users", status_code=303)
    try:
        identity.update_user(uow, principal, user, name=None, active=wanted == "true")
    except Problem as problem:
        flash(request, problem.detail, "error")
        return RedirectResponse("/console/users", status_code=303)
    if user.active:
        flash(request, _("%(email)s can sign in again.", email=user.email))
    else:
        flash(request, _("%(email)s is deactivated and signed out everywhere.", email=user.email))
    return RedirectResponse("/console/users", status_code=303)


@router.post("/users/{user_id}/role", response_class=HTMLResponse, dependencies=[CsrfChecked])
def change_role(
    user_id: str, request: Request, uow: UoW, principal: UserManager, posted: PostedForm
) -> Response:
    user = identity.get_user(uow, user_id)
    wanted = posted.get("role")
    if wanted not in {r.value for r in same_kind_roles(user.role)}:
        flash(
            request, _("Choose one of the roles offered for %(email)s.", email=user.email), "error"
        )
        return RedirectResponse("/console/users", status_code=303)
    try:
        identity.update_user(uow, principal, user, name=None, active=None, role=Role(wanted))
    except Problem as problem:
        flash(request, problem.detail, "error")
        return RedirectResponse("/console/users", status_code=303)
    flash(request, _("%(email)s is now %(role)s.", email=user.email, role=words(user.role)))
    return RedirectResponse("/console/users", status_code=303)
