"""Who may call each support and NPS endpoint: every role, a partner's system, another partner,
the customer and another customer.

Allowed calls succeed; another partner's or customer's objects answer 404 (as if absent); a body
naming another customer's order is a field error; everyone else gets 401 (anonymous) or 403."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.models import Partner
from beyondbank.commerce.support import service
from beyondbank.core.authz import PARTNER_CLIENT_SCOPES, Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from tests import factories as f
from tests.commerce.support.factories import make_order

API = "/api/v1"


@dataclass
class Scene:
    order_id: str  # the customer's delivered order, not yet surveyed
    ticket_id: str  # open
    resolved_id: str


def _principals(
    uow: UnitOfWork, settings: Settings, partner: Partner, customer: Customer
) -> dict[str, Any]:
    merchant = f.make_merchant(uow)
    client = f.make_client(uow, sorted(PARTNER_CLIENT_SCOPES), partner=partner)
    headers: dict[str, Any] = {
        "anonymous": {},
        "customer": f.auth(settings, uow, customer),
        "other_customer": f.auth(settings, uow, f.make_customer(uow)),
        "partner_client": f.auth(settings, uow, client),
        "other_partner_admin": f.auth(
            settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=f.make_partner(uow))
        ),
    }
    for role in Role:
        if role == Role.CUSTOMER:
            continue
        bound = {"merchant": merchant} if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else {}
        if role in (Role.PARTNER_ADMIN, Role.PARTNER_STAFF):
            bound = {"partner": partner}
        headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, **bound))
    return headers


def _scene(uow: UnitOfWork, partner: Partner, customer: Customer) -> Scene:
    order = make_order(uow, customer, partner)
    uow.commit()
    who = f.principal(customer)
    ask = service.TicketIn(subject="Where is it?", message="Not arrived.", order_id=order.public_id)
    ticket = service.open_ticket(uow, who, ask)
    resolved = service.open_ticket(uow, who, ask)
    service.resolve(uow, who, resolved.public_id)
    return Scene(order.public_id, ticket.public_id, resolved.public_id)


Call = Callable[[TestClient, Scene, dict[str, str]], Any]
T = "/shop/support/tickets"

ENDPOINTS: dict[str, Call] = {
    "POST /shop/support/tickets": lambda c, s, h: c.post(
        f"{API}{T}",
        json={"order_id": s.order_id, "subject": "Damaged", "message": "The box was wet."},
        headers=h,
    ),
    "GET /shop/support/tickets": lambda c, s, h: c.get(f"{API}{T}", headers=h),
    "GET /shop/support/tickets/{id}": lambda c, s, h: c.get(f"{API}{T}/{s.ticket_id}", headers=h),
    "POST /shop/support/tickets/{id}/messages": lambda c, s, h: c.post(
        f"{API}{T}/{s.ticket_id}/messages", json={"body": "Any news?"}, headers=h
    ),
    "POST /shop/support/tickets/{id}/resolve": lambda c, s, h: c.post(
        f"{API}{T}/{s.ticket_id}/resolve", headers=h
    ),
    "POST /shop/support/tickets/{id}/close": lambda c, s, h: c.post(
        f"{API}{T}/{s.resolved_id}/close", headers=h
    ),
    "GET /shop/support/overdue": lambda c, s, h: c.get(f"{API}/shop/support/overdue", headers=h),
    "POST /shop/orders/{id}/nps": lambda c, s, h: c.post(
        f"{API}/shop/orders/{s.order_id}/nps", json={"score": 9}, headers=h
    ),
    "GET /shop/nps/summary": lambda c, s, h: c.get(f"{API}/shop/nps/summary", headers=h),
}

ONE_TICKET = {
    "GET /shop/support/tickets/{id}",
    "POST /shop/support/tickets/{id}/messages",
    "POST /shop/support/tickets/{id}/resolve",
    "POST /shop/support/tickets/{id}/close",
}
READ = {"GET /shop/support/tickets", "GET /shop/support/tickets/{id}"}
TALK = {
    "POST /shop/support/tickets/{id}/messages",
    "POST /shop/support/tickets/{id}/resolve",
    "POST /shop/support/tickets/{id}/close",
}
WATCH = {"GET /shop/support/overdue", "GET /shop/nps/summary"}
PARTNER = READ | TALK | WATCH

ALLOWED: dict[str, set[str]] = {
    # The bank reads every ticket and may step in; it neither opens tickets nor answers surveys.
    "bank_admin": READ | TALK | WATCH,
    "relationship_manager": READ | TALK | WATCH,
    "auditor": READ | WATCH,
    "analyst": {"GET /shop/nps/summary"},  # aggregated figures only
    "merchant_admin": set(),
    "merchant_staff": set(),
    "partner_admin": PARTNER,
    "partner_staff": PARTNER,
    "partner_client": PARTNER,
    "other_partner_admin": {"GET /shop/support/tickets"} | WATCH,  # its own: here nothing
    "customer": {"POST /shop/support/tickets", "POST /shop/orders/{id}/nps"} | READ | TALK,
    "other_customer": {"GET /shop/support/tickets"},
    "anonymous": set(),
}
HIDDEN: dict[str, set[str]] = {
    "other_partner_admin": ONE_TICKET,
    "other_customer": ONE_TICKET | {"POST /shop/orders/{id}/nps"},
}
INVALID: dict[str, set[str]] = {"other_customer": {"POST /shop/support/tickets"}}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, who: str
) -> None:
    partner = f.make_partner(uow)
    customer = f.make_customer(uow)
    headers = _principals(uow, settings, partner, customer)[who]
    uow.commit()
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, _scene(uow, partner, customer), headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        elif endpoint in HIDDEN.get(who, set()):
            ok = response.status_code == 404
        elif endpoint in INVALID.get(who, set()):
            ok = response.status_code == 422
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
