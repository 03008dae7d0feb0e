"""A stand-in for the bank's mobile app, served only in the demo: pick a demo customer and "open
beyondbank", which signs on with a freshly issued token, exactly as the bank's app would."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import membership, people
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import MemberStatus
from beyondbank.core.errors import NotFound
from beyondbank.core.settings import Settings
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.deps import SettingsDep, UoW
from beyondbank.identity import service as identity
from beyondbank.web.forms import PostedForm
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked

router = APIRouter(prefix="/demo", include_in_schema=False)

DEMO_CUSTOMERS = 36


def demo_only(settings: SettingsDep) -> Settings:
    """Anywhere but the demo this page does not exist: it signs anyone in as a customer."""
    if settings.environment != "demo":
        raise NotFound("No page here.")
    return settings


DemoSettings = Annotated[Settings, Depends(demo_only)]


@router.get("/bank-app", response_class=HTMLResponse)
def bank_app(request: Request, uow: UoW, settings: DemoSettings) -> Response:
    members, _more = membership.list_members(
        uow,
        status=MemberStatus.ACTIVE,
        customer_id=None,
        member_number=None,
        cursor=None,
        limit=DEMO_CUSTOMERS,
    )
    by_id = identity.customers_by_ids(uow, {m.customer_id for m in members})
    customers = [(member, by_id[member.customer_id]) for member in members]
    return render(request, "demo/bank_app.html", {"customers": customers})


@router.post("/bank-app/open", dependencies=[CsrfChecked])
def open_beyondbank(uow: UoW, settings: DemoSettings, posted: PostedForm) -> Response:
    """Issue a fresh sign-on token for the chosen demo customer and hand over to beyondbank."""
    bank_ref = posted.get("customer_ref").strip()
    customer_id = people.customer_id_for_bank_ref(uow, bank_ref) if bank_ref else None
    if customer_id is None or alliance.member_for_customer(uow, customer_id) is None:
        raise NotFound("That is not one of the demo bank's customers.")
    customer = identity.get_customer(uow, customer_id)
    token = issue_demo_sso_token(
        settings, customer_ref=bank_ref, now=uow.clock.now(), name=customer.name
    )
    return RedirectResponse(f"/sso?{urlencode({'token': token})}", status_code=303)
