"""Registry tokens: the short-lived signed JWTs that ``/token`` hands to container clients.

HS256 with a key generated on first start (the registry both issues and checks them; replicas
share the key file). Every ``/v2`` request checks signature, audience, expiry and ``kid``;
verified tokens are remembered until they expire so the hot path skips the HMAC.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from cargobay.auth.keyfiles import read_or_create
from cargobay.errors import TokenExpired, Unauthenticated

ISSUER = "cargobay"
_CACHE_LIMIT = 10_000


def load_or_create_key(path: Path) -> bytes:
    """The signing key at ``path``, created (0600, 32 random bytes) if missing (safe to race:
    see :func:`cargobay.auth.keyfiles.read_or_create`)."""
    return _parse_key(read_or_create(path, lambda: secrets.token_bytes(32).hex()))


def _parse_key(text: str) -> bytes:
    key = bytes.fromhex(text.strip())
    if len(key) < 32:
        raise ValueError("the registry-token key file is damaged: expected 64 hex digits")
    return key


@dataclass(frozen=True, slots=True)
class GrantedAccess:
    type: str
    name: str
    actions: frozenset[str]


@dataclass(frozen=True, slots=True)
class RegistryClaims:
    subject: str
    access: tuple[GrantedAccess, ...]
    token_id: int | None
    expires_at: float
    #: The token's own id (``jti``): tells one token from another of the same subject.
    token: str = ""

    def mentions(self, type_: str, name: str) -> bool:
        """Whether the token was issued for this resource at all (even with no actions)."""
        return any(g.type == type_ and g.name == name for g in self.access)

    def actions_for(self, type_: str, name: str) -> frozenset[str]:
        for granted in self.access:
            if granted.type == type_ and granted.name == name:
                return granted.actions
        return frozenset()


class RegistryTokens:
    def __init__(self, key: bytes, *, service: str, ttl: int) -> None:
        self.key = key
        self.kid = hashlib.sha256(key).hexdigest()[:16]
        self.service = service
        self.ttl = ttl
        self._verified: dict[str, RegistryClaims] = {}

    def issue(
        self, subject: str, access: list[GrantedAccess], token_id: int | None
    ) -> tuple[str, int, int]:
        """A signed token; returns (token, issued_at, expires_in)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
            "access": [
                {"type": a.type, "name": a.name, "actions": sorted(a.actions)} for a in access
            ],
        }
        if token_id is not None:
            claims["tid"] = token_id
        token = jwt.encode(claims, self.key, algorithm="HS256", headers={"kid": self.kid})
        return token, now, self.ttl

    def _id_of(self, token: str) -> str:
        """The ``jti`` of a token whose signature was already checked (expired tokens too)."""
        claims = jwt.decode(
            token,
            self.key,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_aud": False},
        )
        return str(claims.get("jti") or token[-43:])

    def verify(self, token: str) -> RegistryClaims:
        """The claims of a valid token. Raises Unauthenticated for anything else."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at > time.time():
                return cached
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                raise Unauthenticated("registry token signed with an unknown key")
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                audience=self.service,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
            access = tuple(
                GrantedAccess(str(a["type"]), str(a["name"]), frozenset(map(str, a["actions"])))
                for a in claims.get("access", [])
            )
            token_id = claims.get("tid")
            result = RegistryClaims(
                subject=str(claims["sub"]),
                access=access,
                token_id=int(token_id) if token_id is not None else None,
                expires_at=float(claims["exp"]),
                token=str(claims.get("jti") or token[-43:]),
            )
        except Unauthenticated:
            raise
        except jwt.ExpiredSignatureError:
            raise TokenExpired(
                "the registry token has expired; request a new one", token=self._id_of(token)
            ) from None
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            raise Unauthenticated("Bad credentials: not a valid token") from None
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = result
        return result
