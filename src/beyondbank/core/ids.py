"""Public identifiers: a type prefix and a time-ordered random ULID (`mer_01HZX…`)."""

from __future__ import annotations

import re
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PUBLIC_ID = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def new_ulid(now_ms: int | None = None) -> str:
    """48 bits of milliseconds and 80 random bits, Crockford base32 (26 characters)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"


def is_public_id(value: str, prefix: str | None = None) -> bool:
    if not _PUBLIC_ID.match(value):
        return False
    return prefix is None or value.split("_", 1)[0] == prefix
