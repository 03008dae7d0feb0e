"""Who may call which alliance endpoint (every role and the bank's partner system), and another
merchant's objects answering 404 as if they did not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance.models import Merchant, MerchantStatus
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f

API = "/api/v1"
ROLES = (
    "admin",
    "rm",
    "auditor",
    "analyst",
    "merchant_admin",
    "merchant_staff",
    "customer",
    "bank_system",
)
# The bank's core system: it enrols members and reads the alliance's public structure.
BANK_SCOPES = ["taxonomy:read", "circles:read", "merchants:read", "members:read", "members:write"]


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]


@pytest.fixture
def world(uow: UnitOfWork, settings: Settings) -> World:
    own = f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    other = f.make_merchant(uow, sub_industry="cinema")
    circle = f.make_circle(uow)
    member = f.make_member(uow)
    who: dict[str, Any] = {
        "admin": f.make_user(uow, Role.BANK_ADMIN),
        "rm": f.make_user(uow, Role.RELATIONSHIP_MANAGER),
        "auditor": f.make_user(uow, Role.AUDITOR),
        "analyst": f.make_user(uow, Role.ANALYST),
        "merchant_admin": f.make_user(uow, Role.MERCHANT_ADMIN, own),
        "merchant_staff": f.make_user(uow, Role.MERCHANT_STAFF, own),
        "customer": f.make_customer(uow),
        "bank_system": f.make_client(uow, BANK_SCOPES),
    }
    return World(
        headers={role: f.auth(settings, uow, who[role]) for role in ROLES},
        ids={
            "own": own.public_id,
            "other": other.public_id,
            "circle": circle.public_id,
            "member": member.public_id,
            "own_app": f.make_application(uow, own, circle).public_id,
            "other_app": f.make_application(uow, other, circle).public_id,
            "rm": who["rm"].public_id,
            "missing": "xyz_01KNOWNTOBEMISSING0000000",
        },
    )


ALL = set(ROLES)
STAFF_READ = {"admin", "rm", "auditor", "analyst"}
# Audit visits: the bank's staff but analysts, and a merchant's own users (their own results).
VISIT_READ = {"admin", "rm", "auditor", "merchant_admin", "merchant_staff"}
# (method, path, body, roles allowed): written out, so a wrongly wired permission shows up here.
MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/taxonomy", None, ALL),
    ("GET", "/branches", None, STAFF_READ | {"merchant_admin", "bank_system"}),
    ("POST", "/branches", {}, {"admin"}),
    ("GET", "/circles", None, STAFF_READ | {"merchant_admin", "bank_system"}),
    (
        "GET",
        "/circles/containing?lat=51.5&lon=-0.02",
        None,
        STAFF_READ | {"merchant_admin", "bank_system"},
    ),
    ("POST", "/circles", {}, {"admin"}),
    ("GET", "/circles/{circle}", None, STAFF_READ | {"merchant_admin", "bank_system"}),
    ("PATCH", "/circles/{circle}", {"radius_m": -1}, {"admin"}),
    ("POST", "/circles/{circle}/archive", {}, {"admin"}),
    ("GET", "/circles/{circle}/requirements", None, STAFF_READ | {"merchant_admin", "bank_system"}),
    ("PUT", "/circles/{circle}/requirements", {}, {"admin"}),
    ("GET", "/circles/{circle}/waitlist", None, {"admin", "rm", "auditor", "merchant_admin"}),
    ("GET", "/merchants", None, STAFF_READ | {"merchant_admin", "merchant_staff", "bank_system"}),
    ("POST", "/merchants", {}, {"admin", "rm", "merchant_admin"}),
    (
        "GET",
        "/merchants/{own}",
        None,
        STAFF_READ | {"merchant_admin", "merchant_staff", "bank_system"},
    ),
    ("PATCH", "/merchants/{own}", {"website": "nope"}, {"admin", "rm", "merchant_admin"}),
    ("PUT", "/merchants/{own}/settlement-account", {}, {"admin", "rm", "merchant_admin"}),
    ("POST", "/merchants/{own}/locations", {}, {"admin", "rm", "merchant_admin"}),
    ("GET", "/merchants/{own}/contacts", None, {"admin", "rm", "auditor", "merchant_admin"}),
    ("POST", "/merchants/{own}/contacts", {}, {"admin", "rm", "merchant_admin"}),
    ("POST", "/merchants/{own}/transitions", {}, {"admin", "rm"}),
    ("POST", "/merchants/{own}/licence-verification", {}, {"admin", "rm"}),
    ("POST", "/merchants/{own}/kyb", {}, {"admin", "rm"}),
    ("PUT", "/merchants/{own}/reviews", {}, {"admin", "rm"}),
    ("GET", "/applications", None, {"admin", "rm", "auditor", "merchant_admin"}),
    ("POST", "/applications", {}, {"admin", "rm", "merchant_admin"}),
    ("GET", "/applications/{own_app}", None, {"admin", "rm", "auditor", "merchant_admin"}),
    ("POST", "/applications/{own_app}/approve", {}, {"admin", "rm"}),
    ("POST", "/applications/{own_app}/reject", {}, {"admin", "rm"}),
    ("POST", "/applications/{own_app}/checks/run", None, {"admin", "rm"}),
    ("POST", "/applications/{own_app}/withdraw", {}, {"admin", "rm", "merchant_admin"}),
    ("GET", "/waitlist/offers", None, {"admin", "rm"}),
    ("POST", "/waitlist/offers/{own_app}/decline", {}, {"admin", "rm"}),
    ("GET", "/members", None, {"admin", "bank_system"}),
    ("POST", "/members", {}, {"admin", "bank_system"}),
    ("GET", "/members/{member}", None, {"admin", "bank_system"}),
    ("PUT", "/members/{member}/attributes", {}, {"admin", "bank_system"}),
    ("GET", "/members/me", None, {"customer"}),
    ("POST", "/members/me", {}, {"customer"}),
    ("GET", "/members/me/circles", None, {"customer"}),
    ("PUT", "/merchants/{own}/manager", {}, {"admin"}),
    ("GET", "/merchants/{own}/managers", None, {"admin", "rm", "auditor"}),
    ("GET", "/merchants/{own}/interactions", None, {"admin", "rm", "auditor"}),
    ("POST", "/merchants/{own}/interactions", {}, {"admin", "rm"}),
    ("GET", "/relationship/follow-ups", None, {"admin", "rm", "auditor"}),
    ("GET", "/audit-visits", None, VISIT_READ),
    ("POST", "/audit-visits", {}, {"admin", "auditor"}),
    ("GET", "/corrective-actions", None, VISIT_READ),
    # Endpoints on sub-objects: ids that do not exist, so an allowed caller gets 404 or 422,
    # a refused one 403 before any lookup.
    ("GET", "/branches/{missing}", None, STAFF_READ | {"merchant_admin", "bank_system"}),
    ("DELETE", "/merchants/{own}/contacts/{missing}", None, {"admin", "rm", "merchant_admin"}),
    ("DELETE", "/merchants/{own}/locations/{missing}", None, {"admin", "rm", "merchant_admin"}),
    (
        "POST",
        "/merchants/{own}/locations/{missing}/terminals",
        {},
        {"admin", "rm", "merchant_admin"},
    ),
    ("DELETE", "/merchants/{own}/terminals/{missing}", None, {"admin", "rm", "merchant_admin"}),
    ("DELETE", "/merchants/{own}/manager", None, {"admin"}),
    ("POST", "/applications/{own_app}/checks/{missing}/confirm", {}, {"admin", "rm"}),
    ("POST", "/waitlist/offers/{own_app}/accept", {}, {"admin", "rm"}),
    ("POST", "/interactions/{missing}/follow-up-done", None, {"admin", "rm"}),
    ("GET", "/audit-visits/{missing}", None, VISIT_READ),
    ("GET", "/corrective-actions/{missing}", None, VISIT_READ),
    ("POST", "/corrective-actions/{missing}/close", {}, {"admin", "rm"}),
    ("POST", "/members/me/cards", {}, {"customer"}),
    ("DELETE", "/members/me/cards/{missing}", None, {"customer"}),
    ("PATCH", "/members/me/places", {}, {"customer"}),
    ("POST", "/members/me/leave", {}, {"customer"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX]
)
def test_authorisation_matrix(
    client: TestClient,
    world: World,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    url = API + path.format(**world.ids)
    outcomes = {}
    for role in ROLES:
        response = client.request(method, url, json=body, headers=world.headers[role])
        outcomes[role] = response.status_code
        assert response.status_code != 500, (role, response.text)
    assert {role for role, status in outcomes.items() if status != 403} == allowed, outcomes
    assert client.request(method, url, json=body).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/merchants/{other}",
        "/merchants/{other}/contacts",
        "/applications/{other_app}",
    ],
)
def test_another_merchants_objects_answer_404(client: TestClient, world: World, path: str) -> None:
    url = API + path.format(**world.ids)
    response = client.get(url, headers=world.headers["merchant_admin"])
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/not-found"
    assert client.get(url, headers=world.headers["admin"]).status_code == 200


def test_writes_to_another_merchant_answer_404(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    headers = world.headers["merchant_admin"]
    other = world.ids["other"]
    for method, path, body in [
        ("PATCH", f"/merchants/{other}", {"trading_name": "Mine now"}),
        ("POST", f"/merchants/{other}/contacts", {"name": "Intruder"}),
        ("POST", "/applications", {"merchant_id": other, "circle_id": world.ids["circle"]}),
        ("POST", f"/applications/{world.ids['other_app']}/withdraw", {"reason": "sabotage"}),
    ]:
        response = client.request(method, API + path, json=body, headers=headers)
        assert response.status_code == 404, (path, response.text)
    merchant = uow.session.scalars(select(Merchant).where(Merchant.public_id == other)).one()
    assert merchant.trading_name != "Mine now"
    assert merchant.contacts == []
