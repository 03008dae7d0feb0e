"""Public identifiers: a type prefix and a time-ordered random ULID (`mer_01HZX…`)."""

from __future__ import annotations

import re
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(first + second for first in _CROCKFORD for second in _CROCKFORD)
_PUBLIC_ID = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def new_ulid(now_ms: int | None = None) -> str:
    """48 bits of milliseconds and 80 random bits, Crockford base32 (26 characters).

    The 130 bits the 26 characters carry (the top two always zero) are read ten at a time
    through a table of character pairs: the bulk ledger path names a transaction per draft."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    pair = _PAIRS
    return (
        pair[value >> 120]
        + pair[(value >> 110) & 1023]
        + pair[(value >> 100) & 1023]
        + pair[(value >> 90) & 1023]
        + pair[(value >> 80) & 1023]
        + pair[(value >> 70) & 1023]
        + pair[(value >> 60) & 1023]
        + pair[(value >> 50) & 1023]
        + pair[(value >> 40) & 1023]
        + pair[(value >> 30) & 1023]
        + pair[(value >> 20) & 1023]
        + pair[(value >> 10) & 1023]
        + pair[value & 1023]
    )


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"


def is_public_id(value: str, prefix: str | None = None) -> bool:
    if not _PUBLIC_ID.match(value):
        return False
    return prefix is None or value.split("_", 1)[0] == prefix
