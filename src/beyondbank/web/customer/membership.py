"""The customer's arrival from the bank's app by single sign-on, and the home page: my membership
card with its dynamic QR code, my circles and a first few of the benefits open to me."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from beyondbank.alliance import membership
from beyondbank.alliance import service as alliance
from beyondbank.alliance.schemas import EnrolIn
from beyondbank.benefits import service as benefits
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.identity import service as identity
from beyondbank.web.customer.offers import offer
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _, format_locale, supported
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, CustomerPage, choose_language, flash, sign_in

router = APIRouter(include_in_schema=False)

# The membership terms shown on the enrol form (templates/customer/consent.html). Change the
# version with the text: each member's consent records the version they agreed to.
CONSENT_VERSION = "alliance-membership-2026-11"
# A phone screen's worth on the card page; /app/benefits lists them all, nearest first.
BENEFITS_SHOWN = 5


# -- arriving from the bank's app ----------------------------------------------------------------


@router.get("/sso", response_class=HTMLResponse)
def sso_landing(
    request: Request, uow: UoW, settings: SettingsDep, token: str | None = None
) -> Response:
    """The bank's app opens this with a fresh sign-on token: verified (signature, issuer,
    audience, expiry, one-time use), the customer is signed in and sent on without the token."""
    if not token:
        return _refused(request, _("The link carries no sign-on token."))
    try:
        customer, _access = identity.sso_sign_in(uow, settings, token)
    except Problem as problem:
        return _refused(request, problem.detail)
    sign_in(request, "customer", customer.public_id)
    # The bank's app knows the language its customer reads; the pages follow it until the
    # customer picks another with the switch.
    language = supported(customer.locale)
    if language:
        choose_language(request, language)
    return RedirectResponse("/app", status_code=303)


def _refused(request: Request, reason: str) -> Response:
    return render(request, "customer/sso_refused.html", {"reason": reason}, status_code=401)


# -- my membership -------------------------------------------------------------------------------


def member_code(uow: UnitOfWork, principal: Principal, settings: Settings) -> dict[str, Any]:
    """The member's code for this window: digits to read out, the QR code, when it expires."""
    code = benefits.current_member_code(
        uow, principal, secret=settings.secret_key.get_secret_value()
    )
    encoded = base64.b64encode(code.qr_svg.encode()).decode()
    return {
        "code": code.code,
        # Three groups of six, so it can be read out at the counter and fits a phone's width.
        "grouped": " ".join(code.code[i : i + 6] for i in range(0, len(code.code), 6)),
        "qr": f"data:image/svg+xml;base64,{encoded}",
        "expires_at": code.expires_at,
        "refresh_after_seconds": code.refresh_after_seconds,
    }


def _home(
    request: Request,
    uow: UnitOfWork,
    settings: Settings,
    principal: Principal,
    *,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    member = benefits.member_of(uow, principal)
    views, more = benefits.member_benefits(
        uow, principal, merchant_id=None, kind=None, cursor=None, limit=BENEFITS_SHOWN
    )
    context: dict[str, Any] = {
        "member": member,
        "code": member_code(uow, principal, settings) if member else None,
        "circles": alliance.member_circles(uow, member) if member else [],
        "offers": [offer(view, uow.clock.now(), format_locale()) for view in views],
        "more_offers": more is not None,
        "form": form or Form("enrol", values={"consent.text_version": CONSENT_VERSION}),
        "consent_version": CONSENT_VERSION,
    }
    response = render(
        request, "customer/app.html", context, principal=principal, status_code=status_code
    )
    # The page shows a member code, a credential for under a minute: never cached anywhere.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/app", response_class=HTMLResponse)
def customer_home(
    request: Request, uow: UoW, settings: SettingsDep, principal: CustomerPage
) -> Response:
    return _home(request, uow, settings, principal)


@router.get("/app/member-code")
def fresh_code(uow: UoW, settings: SettingsDep, principal: CustomerPage) -> Response:
    """The current code for the page's script to swap in when the shown one expires."""
    code = member_code(uow, principal, settings)
    body = {**code, "expires_at": code["expires_at"].isoformat()}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/app/enrol", response_class=HTMLResponse, dependencies=[CsrfChecked])
def enrol(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: CustomerPage,
    posted: PostedForm,
) -> Response:
    form = Form("enrol", values=posted.typed())
    body = nested(form.values, ("consent.text_version",))
    if posted.get("consent.accepted") == "true":
        # A ticked box is the literal `true` the schema asks for; unticked, it is missing.
        body.setdefault("consent", {})["accepted"] = True
    data = validate(
        EnrolIn,
        body,
        form,
        messages={"consent.accepted": _("Tick the box to agree to the membership terms.")},
    )
    if data is not None and data.consent.text_version != CONSENT_VERSION:
        form.errors["consent.accepted"] = _(
            "The terms have changed since the page was shown; read them again and agree."
        )
        form.values["consent.text_version"] = CONSENT_VERSION
    if data is None or form.errors:
        return _home(request, uow, settings, principal, form=form, status_code=422)
    assert principal.customer_id is not None  # customer pages are for customers only
    try:
        member = membership.enrol(
            uow,
            principal,
            customer_id=principal.customer_id,
            consent_version=data.consent.text_version,
            consent_channel="app",
        )
    except Problem as problem:
        uow.rollback()
        form.absorb(problem, ("consent.accepted",))
        return _home(request, uow, settings, principal, form=form, status_code=problem.status)
    flash(
        request, _("Welcome to the alliance. Your member number is %(n)s.", n=member.member_number)
    )
    return RedirectResponse("/app", status_code=303)
