"""Signed tokens: platform access tokens, the bank app's single-sign-on tokens, dynamic member codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from beyondbank.core.errors import FieldError, InvalidInput, Unauthenticated
from beyondbank.core.i18n import _

ACCESS_TOKEN_ISSUER = "beyondbank"  # noqa: S105 (an issuer name, not a secret)


def derive_key(secret: str, purpose: str) -> bytes:
    """A separate key per purpose, so a token made for one use is worthless for another."""
    return hmac.new(secret.encode(), f"beyondbank:{purpose}".encode(), hashlib.sha256).digest()


# -- platform access tokens -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessClaims:
    kind: str  # "user" | "client" | "customer"
    subject: str  # public id
    scopes: tuple[str, ...]
    expires_at: datetime


def issue_access_token(
    secret: str,
    *,
    kind: str,
    subject: str,
    now: datetime,
    ttl_seconds: int,
    scopes: tuple[str, ...] = (),
) -> str:
    claims: dict[str, Any] = {
        "iss": ACCESS_TOKEN_ISSUER,
        "sub": subject,
        "knd": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, derive_key(secret, "access-token"), algorithm="HS256")


def read_access_token(secret: str, token: str, *, now: datetime) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            derive_key(secret, "access-token"),
            algorithms=["HS256"],
            issuer=ACCESS_TOKEN_ISSUER,
            options={
                "require": ["exp", "iat", "sub", "knd"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(_("The bearer token is not valid: %(reason)s.", reason=exc)) from None
    # Times are checked against the injected clock, not the wall clock.
    if int(claims["exp"]) <= int(now.timestamp()):
        raise Unauthenticated(_("The bearer token has expired."))
    if int(claims["iat"]) > int(now.timestamp()) + 60:
        raise Unauthenticated(_("The bearer token was issued in the future."))
    return AccessClaims(
        kind=str(claims["knd"]),
        subject=str(claims["sub"]),
        scopes=tuple(str(claims.get("scope", "")).split()),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
    )


# -- single sign-on from the bank's app ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SsoClaims:
    subject: str  # the bank's customer reference
    jti: str
    expires_at: datetime
    name: str | None
    email: str | None
    locale: str | None
    raw: dict[str, Any]


def load_jwks(path: Path) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(json.loads(path.read_text()))


def verify_sso_token(
    token: str,
    *,
    keys: jwt.PyJWKSet,
    issuer: str,
    audience: str,
    algorithms: list[str],
    now: datetime,
    leeway_seconds: int,
    max_lifetime_seconds: int,
) -> SsoClaims:
    """Signature (by a configured key, with an allowed asymmetric algorithm), issuer, audience,
    expiry and lifetime. Replay (the one-time `jti`) is checked by the caller against the database."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated(_("The sign-on token is malformed.")) from None
    algorithm = header.get("alg")
    if algorithm not in algorithms:
        raise Unauthenticated(
            _("The sign-on token's algorithm %(algorithm)r is not accepted.", algorithm=algorithm)
        )
    key = _key_for(keys, header.get("kid"))
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={
                "require": ["exp", "iat", "iss", "aud", "sub", "jti"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise Unauthenticated(_("The sign-on token is for another audience.")) from None
    except jwt.InvalidIssuerError:
        raise Unauthenticated(_("The sign-on token is from an unknown issuer.")) from None
    except jwt.InvalidSignatureError:
        raise Unauthenticated(_("The sign-on token's signature does not verify.")) from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(
            _("The sign-on token is not valid: %(reason)s.", reason=exc)
        ) from None
    stamp = int(now.timestamp())
    expires, issued = int(claims["exp"]), int(claims["iat"])
    if expires + leeway_seconds <= stamp:
        raise Unauthenticated(_("The sign-on token has expired."))
    if issued - leeway_seconds > stamp:
        raise Unauthenticated(_("The sign-on token was issued in the future."))
    if expires - issued > max_lifetime_seconds:
        raise Unauthenticated(_("The sign-on token lives longer than this platform accepts."))
    return SsoClaims(
        subject=str(claims["sub"]),
        jti=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(expires, tz=now.tzinfo),
        name=claims.get("name"),
        email=claims.get("email"),
        locale=claims.get("locale"),
        raw=claims,
    )


def _key_for(keys: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK:
    if kid is None:
        if len(keys.keys) == 1:
            return keys.keys[0]
        raise Unauthenticated(_("The sign-on token names no key (kid)."))
    for key in keys.keys:
        if key.key_id == kid:
            return key
    raise Unauthenticated(_("The sign-on token is signed with an unknown key %(kid)r.", kid=kid))


# -- the member's dynamic code (shown as a QR code, or typed at the counter) ------------------

CODE_STEP_SECONDS = 30
CODE_DIGITS = 8
MEMBER_NUMBER_DIGITS = 10


@dataclass(frozen=True, slots=True)
class MemberCode:
    member_number: str
    step: int  # the 30-second window it was issued in; a code is single-use per window


def member_code(secret: str, member_number: str, step: int) -> str:
    """18 digits: the member number and an 8-digit HMAC of (member, time window), like TOTP."""
    key = derive_key(secret, f"member-code:{member_number}")
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{member_number}{value % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def code_step(now: datetime) -> int:
    return int(now.timestamp()) // CODE_STEP_SECONDS


def code_expires_at(step: int, tz: Any) -> datetime:
    """A code is accepted in its own window and the next: at most a minute in all."""
    return datetime.fromtimestamp((step + 2) * CODE_STEP_SECONDS, tz=tz)


def verify_member_code(
    secret: str, code: str, *, now: datetime, field: str = "qr_token"
) -> MemberCode:
    """The member number and window of a valid code; 422 naming `field` if malformed or expired."""
    cleaned = code.replace(" ", "").replace("-", "")
    if not cleaned.isdigit() or len(cleaned) != MEMBER_NUMBER_DIGITS + CODE_DIGITS:
        raise InvalidInput(
            _("The member code is malformed."),
            errors=(
                FieldError(
                    field, _("expected %(count)s digits", count=MEMBER_NUMBER_DIGITS + CODE_DIGITS)
                ),
            ),
        )
    member_number = cleaned[:MEMBER_NUMBER_DIGITS]
    current = code_step(now)
    for step in (current, current - 1):
        if hmac.compare_digest(member_code(secret, member_number, step), cleaned):
            return MemberCode(member_number=member_number, step=step)
    raise InvalidInput(
        _("The member code has expired or is not valid; ask the member to refresh it."),
        errors=(FieldError(field, _("expired or not valid")),),
    )
