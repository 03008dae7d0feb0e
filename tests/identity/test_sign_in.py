"""Sign-in: passwords, client credentials, and the bank app's single-sign-on tokens."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import DEMO_KEY_ID, issue_demo_sso_token
from tests import factories as f


def test_password_sign_in_gives_a_token_that_identifies_the_user(
    client: TestClient, uow: UnitOfWork
) -> None:
    user = f.make_user(uow, Role.BANK_ADMIN, email="admin@bank.test")
    response = client.post(
        "/api/v1/auth/token", json={"email": "ADMIN@bank.test", "password": f.PASSWORD}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["id"] == user.public_id
    assert me["role"] == "bank_admin"
    assert "circles:write" in me["permissions"]


@pytest.mark.parametrize("password", ["wrong-password-1A", ""])
def test_wrong_password_is_a_401_problem(
    client: TestClient, uow: UnitOfWork, password: str
) -> None:
    f.make_user(uow, Role.ANALYST, email="a@bank.test")
    response = client.post(
        "/api/v1/auth/token", json={"email": "a@bank.test", "password": password}
    )
    assert response.status_code in (401, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_deactivated_user_token_stops_working(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    user = f.make_user(uow, Role.ANALYST)
    headers = f.auth(settings, uow, user)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    user.active = False
    uow.session.flush()
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/unauthenticated"


def test_expired_access_token_is_refused(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    headers = f.auth(settings, uow, f.make_user(uow, Role.ANALYST))
    clock.advance(timedelta(hours=2))
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_client_credentials_grant_with_scopes(client: TestClient, uow: UnitOfWork) -> None:
    api_client = f.make_client(uow, ["members:read", "members:write"])
    basic = base64.b64encode(f"{api_client.client_id}:{f.PASSWORD}".encode()).decode()
    response = client.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "scope": "members:read"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "members:read"
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert me["kind"] == "client"
    assert me["permissions"] == ["members:read"]

    too_much = client.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": f.PASSWORD,
            "scope": "members:read circles:write",
        },
    )
    assert too_much.status_code == 403
    wrong = client.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": "nope",
        },
    )
    assert wrong.status_code == 401


# -- single sign-on ---------------------------------------------------------------------


def _sso(settings: Settings, clock: FixedClock, **kw: object) -> str:
    return issue_demo_sso_token(
        settings, customer_ref="CUST-000777", now=clock.now(), name="Mei Chen", **kw
    )  # type: ignore[arg-type]


def test_sso_token_signs_the_customer_in_without_a_password(
    client: TestClient, settings: Settings, clock: FixedClock
) -> None:
    response = client.post("/api/v1/sso/session", json={"token": _sso(settings, clock)})
    assert response.status_code == 200, response.text
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["kind"] == "customer"
    assert me.json()["label"] == "Mei Chen"


def test_replayed_sso_token_is_refused(
    client: TestClient, settings: Settings, clock: FixedClock
) -> None:
    token = _sso(settings, clock)
    assert client.post("/api/v1/sso/session", json={"token": token}).status_code == 200
    replay = client.post("/api/v1/sso/session", json={"token": token})
    assert replay.status_code == 401
    assert "used already" in replay.json()["detail"]


def test_expired_sso_token_is_refused(
    client: TestClient, settings: Settings, clock: FixedClock
) -> None:
    token = _sso(settings, clock, lifetime=timedelta(minutes=2))
    clock.advance(timedelta(minutes=3))
    response = client.post("/api/v1/sso/session", json={"token": token})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_sso_token_for_another_audience_or_issuer_is_refused(
    client: TestClient, settings: Settings, clock: FixedClock
) -> None:
    wrong_aud = client.post(
        "/api/v1/sso/session", json={"token": _sso(settings, clock, audience="other-app")}
    )
    assert wrong_aud.status_code == 401
    assert "audience" in wrong_aud.json()["detail"]
    wrong_iss = client.post(
        "/api/v1/sso/session", json={"token": _sso(settings, clock, issuer="https://evil.example")}
    )
    assert wrong_iss.status_code == 401
    assert "issuer" in wrong_iss.json()["detail"]


def test_forged_sso_tokens_are_refused(
    client: TestClient, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    # Signed by a key the bank never published, under the bank's key id.
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "forger.pem"
    pem.write_bytes(
        forger.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    forged = _sso(settings, clock, private_key=pem)
    response = client.post("/api/v1/sso/session", json={"token": forged})
    assert response.status_code == 401
    assert "signature" in response.json()["detail"]

    # alg=none and HS256 with the public key as the secret: algorithm confusion.
    claims = jwt.decode(_sso(settings, clock), options={"verify_signature": False})
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "kid": DEMO_KEY_ID}).encode()
    ).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    unsigned = f"{header.decode()}.{payload.decode()}."
    assert client.post("/api/v1/sso/session", json={"token": unsigned}).status_code == 401
    hs = jwt.encode(
        claims,
        "a-public-key-is-not-a-secret-but-long",
        algorithm="HS256",
        headers={"kid": DEMO_KEY_ID},
    )
    confused = client.post("/api/v1/sso/session", json={"token": hs})
    assert confused.status_code == 401
    assert "algorithm" in confused.json()["detail"]

    # Tampered payload under the genuine signature.
    genuine = _sso(settings, clock)
    h, _, s = genuine.split(".")
    claims["sub"] = "CUST-SOMEONE-ELSE"
    tampered_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = client.post("/api/v1/sso/session", json={"token": f"{h}.{tampered_payload}.{s}"})
    assert tampered.status_code == 401
    assert client.post("/api/v1/sso/session", json={"token": "not-a-jwt"}).status_code == 401


def test_sso_token_living_too_long_is_refused(
    client: TestClient, settings: Settings, clock: FixedClock
) -> None:
    token = _sso(settings, clock, lifetime=timedelta(days=30))
    response = client.post("/api/v1/sso/session", json={"token": token})
    assert response.status_code == 401
    assert "longer" in response.json()["detail"]
