"""Issue single-sign-on tokens as the demo bank app would, signed with the shipped demo key."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path

import jwt

from beyondbank.core.settings import DEMO_KEYS_DIR, Settings

DEMO_PRIVATE_KEY = DEMO_KEYS_DIR / "bank_app_sso_private.pem"
DEMO_KEY_ID = "demo-bank-app-2026"


def issue_demo_sso_token(
    settings: Settings,
    *,
    customer_ref: str,
    now: datetime,
    name: str | None = None,
    email: str | None = None,
    locale: str | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    private_key: Path = DEMO_PRIVATE_KEY,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    if settings.environment == "production":
        raise RuntimeError("demo sign-on tokens are not issued in production")
    claims: dict[str, object] = {
        "iss": issuer or settings.sso_issuer,
        "aud": audience or settings.sso_audience,
        "sub": customer_ref,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    for claim, value in (("name", name), ("email", email), ("locale", locale)):
        if value:
            claims[claim] = value
    return jwt.encode(
        claims, private_key.read_bytes(), algorithm="RS256", headers={"kid": DEMO_KEY_ID}
    )
