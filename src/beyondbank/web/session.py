"""Web sessions: who is signed in, CSRF tokens for every form, and the page-level access checks."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from beyondbank.core.authz import (
    MERCHANT_ROLES,
    PARTNER_ROLES,
    STAFF_ROLES,
    Permission,
    Principal,
)
from beyondbank.core.errors import Forbidden, Unauthenticated
from beyondbank.deps import UoW
from beyondbank.identity import service as identity
from beyondbank.web.i18n import SESSION_KEY, _

CSRF_FIELD = "csrf_token"
LANGUAGE_KEY = SESSION_KEY
_FLASHES = "flashes"


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def sign_in(request: Request, kind: str, public_id: str) -> None:
    """Start a fresh session (a new CSRF token too, so nothing from before sign-in carries over
    but the language the person chose)."""
    language = request.session.get(LANGUAGE_KEY)
    request.session.clear()
    request.session.update({"kind": kind, "sub": public_id, "csrf": secrets.token_urlsafe(32)})
    if language:
        request.session[LANGUAGE_KEY] = language


def sign_out(request: Request) -> None:
    language = request.session.get(LANGUAGE_KEY)
    request.session.clear()
    if language:
        request.session[LANGUAGE_KEY] = language


def choose_language(request: Request, language: str) -> None:
    request.session[LANGUAGE_KEY] = language


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A message for the next page shown (after the redirect that follows a form): `ok` for what
    was done, `error` for what could not be."""
    request.session[_FLASHES] = [*request.session.get(_FLASHES, []), [kind, message]]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    return [(str(kind), str(text)) for kind, text in request.session.pop(_FLASHES, [])]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Every state-changing form carries the session's CSRF token; anything else is refused."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, str(expected)):
        raise Forbidden(
            "The form has expired or did not come from this site; reload and try again."
        )


CsrfChecked = Depends(verify_csrf)


def session_principal(request: Request, uow: UoW) -> Principal | None:
    kind, subject = request.session.get("kind"), request.session.get("sub")
    if not kind or not subject:
        return None
    try:
        with uow.fresh() as own:
            return identity.principal_for(own, str(kind), str(subject))
    except Unauthenticated:
        request.session.clear()
        return None


MaybeWebPrincipal = Annotated[Principal | None, Depends(session_principal)]


def _next(request: Request) -> str:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(path, safe="/?=&")


def signed_in_page(request: Request, principal: MaybeWebPrincipal) -> Principal:
    if principal is None:
        raise LoginRequired(_next(request))
    return principal


def staff_page(request: Request, principal: MaybeWebPrincipal) -> Principal:
    principal = signed_in_page(request, principal)
    if principal.role not in STAFF_ROLES:
        raise Forbidden(_("The console is for the bank's staff."))
    return principal


def page_requires(permission: Permission) -> Callable[[Principal], Principal]:
    def dependency(principal: Annotated[Principal, Depends(staff_page)]) -> Principal:
        if permission not in principal.permissions:
            raise Forbidden(
                _("Your role does not include %(permission)s.", permission=permission.value)
            )
        return principal

    return dependency


StaffPage = Annotated[Principal, Depends(staff_page)]


def merchant_page(request: Request, principal: MaybeWebPrincipal) -> Principal:
    principal = signed_in_page(request, principal)
    if principal.role not in MERCHANT_ROLES or principal.merchant_id is None:
        raise Forbidden(_("These pages are for the alliance merchants' own staff."))
    return principal


MerchantPage = Annotated[Principal, Depends(merchant_page)]


def partner_page(request: Request, principal: MaybeWebPrincipal) -> Principal:
    principal = signed_in_page(request, principal)
    if principal.role not in PARTNER_ROLES or principal.partner_id is None:
        raise Forbidden(_("These pages are for the shop partners' own staff."))
    return principal


PartnerPage = Annotated[Principal, Depends(partner_page)]


def customer_page(request: Request, principal: MaybeWebPrincipal) -> Principal:
    """Customers arrive from the bank's app (single sign-on), never through the sign-in form."""
    if principal is None:
        raise Unauthenticated(
            "Open beyondbank from the bank's app: it signs you in, with no second password."
        )
    if principal.customer_id is None:
        raise Forbidden(_("These pages are for the bank's customers, opened from the bank's app."))
    return principal


CustomerPage = Annotated[Principal, Depends(customer_page)]
