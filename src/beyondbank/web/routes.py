"""Sign-in and sign-out for the web, the landing redirect by role, and the language switch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.core.authz import MERCHANT_ROLES, PARTNER_ROLES, STAFF_ROLES, Principal
from beyondbank.core.errors import Unauthenticated
from beyondbank.deps import UoW
from beyondbank.identity import service as identity
from beyondbank.web.i18n import supported
from beyondbank.web.pages import render
from beyondbank.web.session import (
    CsrfChecked,
    MaybeWebPrincipal,
    choose_language,
    sign_in,
    sign_out,
)

router = APIRouter(include_in_schema=False)


def home_for(principal: Principal) -> str:
    if principal.role in STAFF_ROLES:
        return "/console"
    if principal.role in MERCHANT_ROLES:
        return "/merchant"
    if principal.role in PARTNER_ROLES:
        return "/partner"
    return "/app"


def safe_next(next_path: str | None) -> str | None:
    """Only same-site paths: an open redirect would let a phishing link borrow our sign-in page."""
    if not next_path:
        return None
    parts = urlsplit(next_path)
    if parts.scheme or parts.netloc or not next_path.startswith("/") or next_path.startswith("//"):
        return None
    return next_path


@router.get("/")
def landing(principal: MaybeWebPrincipal) -> Response:
    return RedirectResponse(home_for(principal) if principal else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, principal: MaybeWebPrincipal, next: str | None = None) -> Response:
    if principal is not None:
        return RedirectResponse(safe_next(next) or home_for(principal), status_code=303)
    return render(
        request, "login.html", {"next": safe_next(next) or "", "email": "", "error": None}
    )


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfChecked])
def login(
    request: Request,
    uow: UoW,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        user = identity.authenticate_user(uow, email, password)
    except Unauthenticated as exc:
        context = {"next": safe_next(next) or "", "email": email, "error": exc.detail}
        return render(request, "login.html", context, status_code=401)
    sign_in(request, "user", user.public_id)
    return RedirectResponse(
        safe_next(next) or home_for(identity.principal_for_user(user)), status_code=303
    )


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse("/login", status_code=303)


@router.post("/language", dependencies=[CsrfChecked])
def switch_language(
    request: Request,
    lang: Annotated[str, Form(max_length=16)],
    next: Annotated[str, Form()] = "",
) -> Response:
    """The viewer's language for every page from now on, signed in or not; back where they were."""
    language = supported(lang)
    if language:
        choose_language(request, language)
    return RedirectResponse(safe_next(next) or "/", status_code=303)
