"""Who may call each benefit endpoint: every role and partner system against every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.alliance.models import Merchant
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf

API = "/api/v1"


@dataclass
class Scene:
    merchant_id: str
    draft: Benefit
    submitted: Benefit
    active: Benefit
    paused: Benefit
    redemption_id: str
    code: str


def _principals(uow: UnitOfWork, settings: Settings, merchant: Merchant) -> dict[str, Any]:
    """Bearer headers for every role and partner system, and the signed-in customer."""
    customer = f.make_customer(uow)
    f.make_member(uow, customer)
    pos = f.make_client(uow, ["benefits:read", "redemptions:create", "redemptions:read"], merchant)
    backend = f.make_client(uow, ["benefits:read", "redemptions:read"])
    headers = {
        "anonymous": {},
        "customer": f.auth(settings, uow, customer),
        "pos_client": f.auth(settings, uow, pos),
        "bank_app_client": f.auth(settings, uow, backend),
    }
    for role in Role:
        if role != Role.CUSTOMER:
            bound = merchant if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else None
            headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, bound))
    return headers


def _scene(uow: UnitOfWork, settings: Settings, merchant: Merchant) -> Scene:
    """Fresh objects in the state each endpoint needs, so every allowed call can succeed."""
    active = bf.make_benefit(uow, merchant)
    earlier = bf.make_redemption(uow, active, f.make_member(uow))
    return Scene(
        merchant_id=merchant.public_id,
        draft=bf.make_benefit(uow, merchant, status=BenefitStatus.DRAFT),
        submitted=bf.make_benefit(uow, merchant, status=BenefitStatus.SUBMITTED),
        active=active,
        paused=bf.make_benefit(uow, merchant, status=BenefitStatus.PAUSED),
        redemption_id=earlier.public_id,
        code=bf.code_at(settings, f.make_member(uow), uow.clock.now()),
    )


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(path: Callable[[Scene], str], body: Callable[[Scene], Any] = lambda s: None) -> Call:
    return lambda client, s, h: client.post(f"{API}{path(s)}", json=body(s), headers=h)


ENDPOINTS: dict[str, Call] = {
    "GET /benefits": _get(lambda s: "/benefits"),
    "POST /benefits": _post(
        lambda s: "/benefits", lambda s: bf.benefit_body(merchant_id=s.merchant_id)
    ),
    "GET /benefits/{id}": _get(lambda s: f"/benefits/{s.active.public_id}"),
    "PATCH /benefits/{id}": lambda client, s, h: client.patch(
        f"{API}/benefits/{s.draft.public_id}", json={"title": "Renamed"}, headers=h
    ),
    "POST /benefits/{id}/submit": _post(lambda s: f"/benefits/{s.draft.public_id}/submit"),
    "POST /benefits/{id}/withdraw": _post(lambda s: f"/benefits/{s.submitted.public_id}/withdraw"),
    "POST /benefits/{id}/approve": _post(lambda s: f"/benefits/{s.submitted.public_id}/approve"),
    "POST /benefits/{id}/reject": _post(
        lambda s: f"/benefits/{s.submitted.public_id}/reject", lambda s: {"reason": "No photos"}
    ),
    "POST /benefits/{id}/pause": _post(lambda s: f"/benefits/{s.active.public_id}/pause"),
    "POST /benefits/{id}/resume": _post(lambda s: f"/benefits/{s.paused.public_id}/resume"),
    "POST /benefits/{id}/extend": _post(
        lambda s: f"/benefits/{s.active.public_id}/extend", lambda s: {"valid_to": "2027-01-31"}
    ),
    "POST /benefits/{id}/end": _post(lambda s: f"/benefits/{s.active.public_id}/end"),
    "GET /me/benefits": _get(lambda s: "/me/benefits"),
    "GET /me/benefits/{id}": _get(lambda s: f"/me/benefits/{s.active.public_id}"),
    "GET /me/member-code": _get(lambda s: "/me/member-code"),
    "GET /me/redemptions": _get(lambda s: "/me/redemptions"),
    "POST /redemptions": lambda client, s, h: client.post(
        f"{API}/redemptions",
        json={"code": s.code, "benefit_id": s.active.public_id, "purchase_amount_minor": 2000},
        headers={**h, "Idempotency-Key": "matrix"},
    ),
    "GET /redemptions": _get(lambda s: "/redemptions"),
    "GET /redemptions/{id}": _get(lambda s: f"/redemptions/{s.redemption_id}"),
    "POST /redemptions/{id}/reverse": _post(
        lambda s: f"/redemptions/{s.redemption_id}/reverse", lambda s: {"reason": "Till error"}
    ),
}

READ_BENEFITS = {"GET /benefits", "GET /benefits/{id}"}
WRITE_BENEFITS = {
    "POST /benefits",
    "PATCH /benefits/{id}",
    "POST /benefits/{id}/submit",
    "POST /benefits/{id}/withdraw",
    "POST /benefits/{id}/pause",
    "POST /benefits/{id}/resume",
    "POST /benefits/{id}/extend",
    "POST /benefits/{id}/end",
}
REVERSE = {"POST /redemptions/{id}/reverse"}
DECIDE = {"POST /benefits/{id}/approve", "POST /benefits/{id}/reject"}
READ_REDEMPTIONS = {"GET /redemptions", "GET /redemptions/{id}"}
MEMBER = {"GET /me/benefits", "GET /me/benefits/{id}", "GET /me/member-code", "GET /me/redemptions"}

ALLOWED: dict[str, set[str]] = {
    "bank_admin": READ_BENEFITS
    | WRITE_BENEFITS
    | REVERSE
    | DECIDE
    | READ_REDEMPTIONS
    | {"POST /redemptions"},
    "relationship_manager": READ_BENEFITS | READ_REDEMPTIONS,
    "auditor": READ_BENEFITS | READ_REDEMPTIONS,
    "analyst": READ_BENEFITS,  # aggregated business data: no member-level redemptions
    "merchant_admin": READ_BENEFITS
    | WRITE_BENEFITS
    | REVERSE
    | READ_REDEMPTIONS
    | {"POST /redemptions"},
    "merchant_staff": READ_BENEFITS | READ_REDEMPTIONS | {"POST /redemptions"},
    "partner_admin": set(),  # a partner's people hold the shop's permissions only
    "partner_staff": set(),
    "customer": MEMBER,
    "pos_client": READ_BENEFITS | READ_REDEMPTIONS | {"POST /redemptions"},
    "bank_app_client": READ_BENEFITS | READ_REDEMPTIONS,
    "anonymous": set(),
}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, who: str
) -> None:
    merchant = f.make_merchant(uow)
    headers = _principals(uow, settings, merchant)[who]
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, _scene(uow, settings, merchant), headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
