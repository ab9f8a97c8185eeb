"""Personal access tokens and workflow tokens: format, checksum and hashing.

A token is ``<prefix>_<30 random base62 chars><6 base62 chars of CRC32>``: the prefix makes a
leaked token recognizable to secret scanners, the checksum lets them (and us) reject typos
without a lookup. Only the SHA-256 of a token is stored; tokens have 178 bits of entropy, so a
fast hash is enough and lets the store find a token by its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from enum import StrEnum

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LENGTH = 30
_CHECKSUM_LENGTH = 6


class TokenKind(StrEnum):
    PAT = "pat"
    WORKFLOW = "workflow"


PREFIXES: dict[TokenKind, str] = {TokenKind.PAT: "cbp_", TokenKind.WORKFLOW: "cbw_"}


def _base62(value: int, length: int) -> str:
    digits = []
    for _ in range(length):
        value, digit = divmod(value, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def new_token(kind: TokenKind) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return f"{PREFIXES[kind]}{body}{_checksum(body)}"


def token_kind(value: str) -> TokenKind | None:
    """The kind of a well-formed token (prefix, length, alphabet, checksum), else None."""
    for kind, prefix in PREFIXES.items():
        if value.startswith(prefix):
            rest = value[len(prefix) :]
            if len(rest) != _RANDOM_LENGTH + _CHECKSUM_LENGTH or not all(
                c in _ALPHABET for c in rest
            ):
                return None
            body, checksum = rest[:_RANDOM_LENGTH], rest[_RANDOM_LENGTH:]
            return kind if hmac.compare_digest(checksum, _checksum(body)) else None
    return None


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets (or their hashes)."""
    return hmac.compare_digest(a.encode(), b.encode())
