"""Who may call each identity endpoint: users, API clients, the audit trail, `me`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f

API = "/api/v1"
CALLERS = (
    "bank_admin",
    "relationship_manager",
    "auditor",
    "analyst",
    "merchant_admin",
    "merchant_staff",
    "customer",
    "bank_system",
)
NEW_USER = {
    "email": "someone@thames-harbour.co.uk",
    "name": "Some One",
    "role": "analyst",
    "password": "A-Strong-Passphrase-1",
}
# (method, path, body, callers allowed); "sign-in" endpoints are public and tested elsewhere.
MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/me", None, set(CALLERS)),
    ("GET", "/users", None, {"bank_admin", "merchant_admin"}),
    ("POST", "/users", NEW_USER, {"bank_admin"}),
    # A merchant admin passes the permission check but the bank's user is invisible to it (404).
    ("PATCH", "/users/{user}", {"name": "Renamed"}, {"bank_admin", "merchant_admin"}),
    ("GET", "/clients", None, {"bank_admin"}),
    ("POST", "/clients", {"name": "Card feed", "scopes": ["members:read"]}, {"bank_admin"}),
    ("GET", "/audit-events", None, {"bank_admin", "auditor"}),
]


@pytest.fixture
def callers(
    uow: UnitOfWork, settings: Settings
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    merchant = f.make_merchant(uow)
    headers = {}
    for role in Role:
        if role == Role.CUSTOMER:
            headers["customer"] = f.auth(settings, uow, f.make_customer(uow))
        else:
            bound = merchant if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else None
            headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, bound))
    headers["bank_system"] = f.auth(
        settings, uow, f.make_client(uow, ["members:read", "members:write"])
    )
    target = f.make_user(uow, Role.ANALYST)
    return headers, {"user": target.public_id}


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX]
)
def test_identity_authorisation_matrix(
    client: TestClient,
    callers: tuple[dict[str, dict[str, str]], dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    headers, ids = callers
    url = API + path.format(**ids)
    outcome = {}
    for caller in CALLERS:
        response = client.request(method, url, json=body, headers=headers[caller])
        assert response.status_code < 500, (caller, response.text)
        outcome[caller] = response.status_code
    assert {c for c, status in outcome.items() if status not in (401, 403)} == allowed, outcome
    assert client.request(method, url, json=body).status_code == 401


def test_merchant_admin_sees_only_its_own_users(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    mine, theirs = f.make_merchant(uow), f.make_merchant(uow, sub_industry="cinema")
    admin = f.make_user(uow, Role.MERCHANT_ADMIN, mine)
    colleague = f.make_user(uow, Role.MERCHANT_STAFF, mine)
    stranger = f.make_user(uow, Role.MERCHANT_STAFF, theirs)
    headers = f.auth(settings, uow, admin)
    listed = {u["id"] for u in client.get(f"{API}/users", headers=headers).json()["items"]}
    assert listed == {admin.public_id, colleague.public_id}
    response = client.patch(
        f"{API}/users/{stranger.public_id}", json={"active": False}, headers=headers
    )
    assert response.status_code == 404
    assert stranger.active
    created = client.post(
        f"{API}/users",
        headers=headers,
        json={
            "email": "till@corner-shop.co.uk",
            "name": "Till",
            "role": "merchant_staff",
            "merchant_id": mine.public_id,
            "password": "A-Strong-Passphrase-1",
        },
    )
    assert created.status_code == 201, created.text
    elsewhere = client.post(
        f"{API}/users",
        headers=headers,
        json={
            "email": "spy@corner-shop.co.uk",
            "name": "Spy",
            "role": "merchant_staff",
            "merchant_id": theirs.public_id,
            "password": "A-Strong-Passphrase-1",
        },
    )
    assert elsewhere.status_code == 404
    promoted = client.post(
        f"{API}/users",
        headers=headers,
        json={
            "email": "boss@corner-shop.co.uk",
            "name": "Boss",
            "role": "bank_admin",
            "password": "A-Strong-Passphrase-1",
        },
    )
    assert promoted.status_code == 403


def test_the_bank_creates_partner_users_bound_to_their_partner(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner = f.make_partner(uow)
    admin = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    body = {
        "email": "ops@partner-shop.co.uk",
        "name": "Shop Ops",
        "role": "partner_admin",
        "password": "A-Strong-Passphrase-1",
    }
    unbound = client.post(f"{API}/users", headers=admin, json=body)
    assert unbound.status_code == 422
    assert unbound.json()["errors"][0]["field"] == "body.partner_id"
    unknown = client.post(f"{API}/users", headers=admin, json=body | {"partner_id": "prt_nope"})
    assert unknown.status_code == 422
    created = client.post(
        f"{API}/users", headers=admin, json=body | {"partner_id": partner.public_id}
    )
    assert created.status_code == 201, created.text
    assert created.json()["partner_id"] == partner.public_id
    staff_with_partner = client.post(
        f"{API}/users",
        headers=admin,
        json=body | {"email": "x@bank.co.uk", "role": "analyst", "partner_id": partner.public_id},
    )
    assert staff_with_partner.status_code == 422


def test_a_partner_user_sees_the_shop_and_nothing_of_the_alliance(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner = f.make_partner(uow)
    headers = f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=partner))
    me = client.get(f"{API}/me", headers=headers).json()
    assert me["partner_id"] == partner.public_id
    assert "catalog:write" in me["permissions"]
    assert not [p for p in me["permissions"] if p.split(":")[0] in {"merchants", "benefits"}]
    assert client.get(f"{API}/merchants", headers=headers).status_code == 403
    assert client.get(f"{API}/users", headers=headers).status_code == 403


def test_a_partner_client_holds_only_the_shops_scopes(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner = f.make_partner(uow)
    admin = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    body = {"name": "Partner backend", "partner_id": partner.public_id}
    refused = client.post(
        f"{API}/clients", headers=admin, json=body | {"scopes": ["orders:fulfil", "members:read"]}
    )
    assert refused.status_code == 422
    assert "members:read" in refused.text
    created = client.post(
        f"{API}/clients", headers=admin, json=body | {"scopes": ["orders:fulfil", "catalog:write"]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["partner_id"] == partner.public_id
