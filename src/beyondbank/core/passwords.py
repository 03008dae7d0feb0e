"""Password hashing with argon2id (OWASP's first choice); plain passwords are never stored."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from beyondbank.core.i18n import _

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_password_strength(password: str) -> str | None:
    """A reason the password is too weak, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("at least %(n)s characters", n=MIN_PASSWORD_LENGTH)
    if password.lower() == password or password.upper() == password:
        return _("mix upper and lower case letters")
    return None
