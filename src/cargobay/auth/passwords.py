"""Password hashing with Argon2id, and the rules a new password must meet (NIST SP 800-63B:
8 to 256 characters, not a common password, no composition rules). Passwords sign in to the web
UI only, never to the registry."""

from __future__ import annotations

import functools
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cargobay.errors import CargobayError

_HASHER = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 256


class WeakPassword(CargobayError):
    """the password does not meet the rules"""


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = files("cargobay.auth").joinpath("common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def check_password(password: str) -> None:
    """Raise :class:`WeakPassword` (saying why) unless ``password`` may be set."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password is too short: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password is too long: use at most {MAX_LENGTH} characters")
    if password.lower() in _common_passwords():
        raise WeakPassword("the password is one of the most common passwords: choose another")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        _HASHER.hash(password)  # spend the same time when there is no such user
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
