"""Who may call each webhook endpoint: every role, a partner's system, another partner and customers.

Allowed calls succeed; another partner's objects answer 404 (as if absent); everyone else gets 401
(anonymous) or 403."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.models import DeliveryStatus, Partner, WebhookDelivery
from beyondbank.commerce.webhooks import service
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core.authz import PARTNER_CLIENT_SCOPES, SYSTEM, Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f

API = "/api/v1"


@dataclass
class Scene:
    partner_id: str
    endpoint_id: str
    dead_delivery_id: int


def _principals(uow: UnitOfWork, settings: Settings, partner: Partner) -> dict[str, Any]:
    merchant = f.make_merchant(uow)
    client = f.make_client(uow, sorted(PARTNER_CLIENT_SCOPES), partner=partner)
    headers: dict[str, Any] = {
        "anonymous": {},
        "customer": f.auth(settings, uow, f.make_customer(uow)),
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


def _scene(uow: UnitOfWork, partner: Partner) -> Scene:
    created = service.create_endpoint(
        uow,
        SYSTEM,
        service.EndpointIn(url="https://partner.example/h", partner_id=partner.public_id),
        production=False,
    )
    emit(uow, partner_id=partner.id, event_type="order.paid", data={})
    uow.session.flush()
    delivery = uow.session.query(WebhookDelivery).order_by(WebhookDelivery.id.desc()).first()
    assert delivery is not None
    delivery.status = DeliveryStatus.DEAD
    uow.commit()
    return Scene(partner.public_id, created.endpoint.public_id, delivery.id)


Call = Callable[[TestClient, Scene, dict[str, str]], Any]

ENDPOINTS: dict[str, Call] = {
    "POST /shop/webhooks/endpoints": lambda c, s, h: c.post(
        f"{API}/shop/webhooks/endpoints",
        json={"url": "https://partner.example/new", "partner_id": s.partner_id},
        headers=h,
    ),
    "GET /shop/webhooks/endpoints": lambda c, s, h: c.get(
        f"{API}/shop/webhooks/endpoints", headers=h
    ),
    "GET /shop/webhooks/endpoints/{id}": lambda c, s, h: c.get(
        f"{API}/shop/webhooks/endpoints/{s.endpoint_id}", headers=h
    ),
    "DELETE /shop/webhooks/endpoints/{id}": lambda c, s, h: c.delete(
        f"{API}/shop/webhooks/endpoints/{s.endpoint_id}", headers=h
    ),
    "POST /shop/webhooks/endpoints/{id}/rotate-secret": lambda c, s, h: c.post(
        f"{API}/shop/webhooks/endpoints/{s.endpoint_id}/rotate-secret", headers=h
    ),
    "GET /shop/webhooks/deliveries": lambda c, s, h: c.get(
        f"{API}/shop/webhooks/deliveries", headers=h
    ),
    "POST /shop/webhooks/deliveries/{id}/replay": lambda c, s, h: c.post(
        f"{API}/shop/webhooks/deliveries/{s.dead_delivery_id}/replay", headers=h
    ),
}

ONE = {
    "GET /shop/webhooks/endpoints/{id}",
    "DELETE /shop/webhooks/endpoints/{id}",
    "POST /shop/webhooks/endpoints/{id}/rotate-secret",
    "POST /shop/webhooks/deliveries/{id}/replay",
}
LISTS = {"GET /shop/webhooks/endpoints", "GET /shop/webhooks/deliveries"}

# Only the partner's admin (its own) and the bank's admin (any) manage webhooks; a partner's
# API client is never granted webhooks:manage (a leaked client key cannot redirect events).
ALLOWED: dict[str, set[str]] = {
    "bank_admin": set(ENDPOINTS),
    "partner_admin": set(ENDPOINTS),
    "other_partner_admin": LISTS,  # sees only its own, here nothing
    "relationship_manager": set(),
    "auditor": set(),
    "analyst": set(),
    "merchant_admin": set(),
    "merchant_staff": set(),
    "partner_staff": set(),
    "partner_client": set(),
    "customer": set(),
    "other_customer": set(),
    "anonymous": set(),
}
HIDDEN: dict[str, set[str]] = {"other_partner_admin": ONE}
# Naming another partner in the body is a field error, like naming one that does not exist.
INVALID: dict[str, set[str]] = {"other_partner_admin": {"POST /shop/webhooks/endpoints"}}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, who: str
) -> None:
    partner = f.make_partner(uow)
    headers = _principals(uow, settings, partner)[who]
    uow.commit()
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, _scene(uow, partner), headers)
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
