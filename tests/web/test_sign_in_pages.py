"""Web sign-in: sessions, CSRF on every form, safe redirects, role-gated pages, security headers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from beyondbank.core.authz import Role
from beyondbank.core.uow import UnitOfWork
from tests import factories as f


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, email: str, next_path: str = "") -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": email,
            "password": f.PASSWORD,
            "next": next_path,
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_staff_sign_in_lands_on_the_console_and_sign_out_ends_it(
    client: TestClient, uow: UnitOfWork
) -> None:
    f.make_user(uow, Role.AUDITOR, email="auditor@bank.test")
    assert (
        client.get("/console/audit", follow_redirects=False)
        .headers["location"]
        .startswith("/login")
    )
    sign_in(client, "auditor@bank.test")
    page = client.get("/console/audit")
    assert page.status_code == 200
    assert "Audit trail" in page.text
    logout = client.post(
        "/logout", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert logout.status_code == 303
    assert client.get("/console/audit", follow_redirects=False).status_code == 303


def test_wrong_password_keeps_the_email_and_says_why(client: TestClient, uow: UnitOfWork) -> None:
    f.make_user(uow, Role.AUDITOR, email="auditor@bank.test")
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": "auditor@bank.test",
            "password": "nope-nope-nope",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert response.status_code == 401
    assert 'value="auditor@bank.test"' in response.text
    assert "not right" in response.text


def test_forms_without_the_csrf_token_are_refused(client: TestClient, uow: UnitOfWork) -> None:
    f.make_user(uow, Role.AUDITOR, email="auditor@bank.test")
    client.get("/login")
    response = client.post("/login", data={"email": "auditor@bank.test", "password": f.PASSWORD})
    assert response.status_code == 403
    forged = client.post(
        "/login",
        data={"email": "auditor@bank.test", "password": f.PASSWORD, "csrf_token": "forged"},
    )
    assert forged.status_code == 403
    assert "text/html" in forged.headers["content-type"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_sign_in_never_redirects_off_site(client: TestClient, uow: UnitOfWork, target: str) -> None:
    f.make_user(uow, Role.AUDITOR, email="auditor@bank.test")
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": "auditor@bank.test",
            "password": f.PASSWORD,
            "next": target,
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console"


def test_next_path_is_honoured_after_sign_in(client: TestClient, uow: UnitOfWork) -> None:
    f.make_user(uow, Role.AUDITOR, email="auditor@bank.test")
    redirect = client.get("/console/audit?action=user.created", follow_redirects=False)
    assert redirect.headers["location"] == "/login?next=/console/audit?action=user.created"
    page = client.get(redirect.headers["location"])
    response = client.post(
        "/login",
        data={
            "email": "auditor@bank.test",
            "password": f.PASSWORD,
            "next": "/console/audit?action=user.created",
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console/audit?action=user.created"


def test_analyst_may_not_read_the_audit_trail(client: TestClient, uow: UnitOfWork) -> None:
    f.make_user(uow, Role.ANALYST, email="analyst@bank.test")
    sign_in(client, "analyst@bank.test")
    response = client.get("/console/audit")
    assert response.status_code == 403
    assert "audit:read" in response.text


def test_merchant_users_are_kept_out_of_the_console(client: TestClient, uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    f.make_user(uow, Role.MERCHANT_ADMIN, merchant=merchant, email="owner@shop.test")
    sign_in(client, "owner@shop.test")
    assert client.get("/console/audit").status_code == 403


def test_pages_carry_security_headers_and_errors_render_as_pages(client: TestClient) -> None:
    page = client.get("/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    missing = client.get("/console/no-such-page")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    api_missing = client.get("/api/v1/no-such-thing")
    assert api_missing.headers["content-type"] == "application/problem+json"


def test_audit_trail_api_for_auditors_only(client: TestClient, uow: UnitOfWork, settings) -> None:  # type: ignore[no-untyped-def]
    admin = f.make_user(uow, Role.BANK_ADMIN)
    auditor = f.make_user(uow, Role.AUDITOR)
    analyst = f.make_user(uow, Role.ANALYST)
    created = client.post(
        "/api/v1/users",
        headers=f.auth(settings, uow, admin),
        json={
            "email": "new.rm@thames-harbour.co.uk",
            "name": "New RM",
            "role": "relationship_manager",
            "password": "A-Strong-Passphrase-1",
        },
    )
    assert created.status_code == 201, created.text
    trail = client.get(
        "/api/v1/audit-events",
        headers=f.auth(settings, uow, auditor),
        params={"object_id": created.json()["id"]},
    )
    assert trail.status_code == 200
    [event] = trail.json()["items"]
    assert event["action"] == "user.created"
    assert event["actor_id"] == admin.public_id
    assert event["after"]["email"] == "new.rm@thames-harbour.co.uk"
    assert "password_hash" not in event["after"]
    assert (
        client.get("/api/v1/audit-events", headers=f.auth(settings, uow, analyst)).status_code
        == 403
    )
