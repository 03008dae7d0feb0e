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
