"""Secrets the server must read back (webhook secrets sign every delivery), encrypted at rest.

A sealed value is ``sealed:v1:<key id>:<Fernet token>`` (AES-128-CBC with an HMAC-SHA256,
from the ``cryptography`` library). The keys live in a key file (``secret_key_file``, by
default ``secret-keys`` in the data directory), one Fernet key a line, created with one key
(0600) on first use. The first key seals; every key of the file opens. To rotate, put a new
key on the first line and keep the old ones below it: values sealed with an older key still
open, and are sealed again with the new one (see :meth:`SecretBox.stale`). Values stored before
sealing existed (no ``sealed:`` prefix) open as they are, and are stale too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from cargobay.auth.keyfiles import read_or_create

PREFIX = "sealed:v1:"


class SealingError(Exception):
    """A sealed value that no key of the key file opens (a key was removed, or the value was
    changed)."""


def key_id(key: bytes) -> str:
    """A short name of a key, stored with what it sealed (never the key itself)."""
    return hashlib.sha256(key).hexdigest()[:12]


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = {key_id(k): Fernet(k) for k in keys}
        self.current = key_id(keys[0])

    def seal(self, plain: str) -> str:
        token = self._keys[self.current].encrypt(plain.encode()).decode()
        return f"{PREFIX}{self.current}:{token}"

    def open(self, stored: str) -> str:
        """The secret a stored value holds (a value stored before sealing is the secret)."""
        if not stored.startswith(PREFIX):
            return stored
        kid, _, token = stored[len(PREFIX) :].partition(":")
        fernet = self._keys.get(kid)
        if fernet is None:
            raise SealingError(f"no key {kid!r} in the secret key file")
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SealingError(f"a value sealed with key {kid!r} is damaged") from None

    def stale(self, stored: str) -> bool:
        """Whether a stored value should be sealed again: not sealed, or with an older key."""
        return not stored.startswith(f"{PREFIX}{self.current}:")


def load_or_create_keys(path: Path) -> SecretBox:
    """The box of the key file at ``path``, created (0600, one new key) if missing (safe to
    race: see :func:`cargobay.auth.keyfiles.read_or_create`)."""
    return _parse(read_or_create(path, lambda: Fernet.generate_key().decode() + "\n"))


def _parse(text: str) -> SecretBox:
    keys = [line.strip().encode() for line in text.splitlines() if line.strip()]
    try:
        return SecretBox(keys)
    except ValueError:
        raise ValueError(
            "the secret key file is damaged: expected one Fernet key (urlsafe base64 of 32 "
            "bytes) a line"
        ) from None
