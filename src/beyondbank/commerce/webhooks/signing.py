"""Standard Webhooks signatures (standardwebhooks.com): signing what we send, verifying it for
receivers.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
`v1,` + base64(HMAC-SHA256(key, content)), where the key is the base64 part of the endpoint's
`whsec_…` secret, decoded. The `webhook-signature` header may carry several space-separated
signatures (for a secret being rotated); a receiver accepts the message if any one matches.
Written with hmac and hashlib: the `standardwebhooks` package is not a dependency, and any
receiver's Standard Webhooks library verifies what this signs (the spec's own test vector is in
tests/commerce/webhooks/test_signing.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
TOLERANCE_SECONDS = 5 * 60  # how far a receiver accepts a timestamp from its own clock


class WebhookVerificationError(Exception):
    """A message a receiver must refuse: missing headers, a stale timestamp, no matching signature."""


def generate_secret() -> str:
    """A fresh endpoint secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for: its base64 part, decoded."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is `whsec_` followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret cannot be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,…` signature of one message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of a message sent at `timestamp` (unix seconds),
    signed with each secret given, space-separated in that order (the current secret first, and
    during a rotation's grace period the one it replaced), so a receiver holding either accepts."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("a message is signed with at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, msg_id, timestamp, body) for key in keys),
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | int,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> str:
    """For receivers: check a message's headers against its raw body; its `webhook-id` if genuine.

    `received` maps header names to values (lower-case names, as HTTP/2 and most frameworks give
    them, or any case: they are looked up case-insensitively). Raises WebhookVerificationError
    when a header is missing, the timestamp is more than `tolerance_seconds` from `now` (a
    replay), or no `v1` signature matches. Dedupe on the returned id: a retry repeats it.
    """
    lowered = {name.lower(): value for name, value in received.items()}
    try:
        msg_id = lowered["webhook-id"]
        raw_timestamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing.args[0]}") from None
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = now if isinstance(now, int) else int(now.timestamp())
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        # Other versions (v1a: asymmetric) are not ours to check; compare in constant time.
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no matching signature")
