"""Verification of OIDC ID tokens (trusted publishing): a CI system's signed statement of which
repository, branch and workflow a job runs for.

A token is accepted only if: it is a JWS signed with RS256 or ES256 (never ``none``, never an
HMAC, never with a key the token itself carries or points to: ``jwk``, ``jku``, ``x5u`` and
``x5c`` headers are ignored); its ``iss`` is exactly an allow-listed issuer (checked before
anything is fetched, so other issuers are never contacted); the signature verifies with that
issuer's published keys (:mod:`.oidc_keys`); ``exp``, ``iat`` and ``nbf`` hold with a small
skew. Audiences and the other claims are the trust policies' business.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cargobay.auth.oidc_keys import IssuerKeys
from cargobay.errors import CargobayError

ALGORITHMS = ("RS256", "ES256")
#: Clock skew allowed on ``exp``, ``nbf`` and ``iat``, seconds.
LEEWAY = 60
#: Longest ID token accepted, in bytes.
MAX_TOKEN = 16 * 1024


class IdTokenRejected(CargobayError):
    """the ID token is not valid"""


@dataclass(frozen=True, slots=True)
class VerifiedIdToken:
    issuer: str
    subject: str
    claims: dict[str, Any]
    expires_at: datetime
    #: Identifies this token for replay detection: SHA-256 of the issuer and ``jti`` (of the
    #: whole token when it has no ``jti``).
    replay_key: str


class IdTokenVerifier:
    def __init__(
        self, keys: IssuerKeys, *, clock: Callable[[], float] = time.time, leeway: int = LEEWAY
    ) -> None:
        self.keys = keys
        self.issuers = keys.issuers
        self._clock = clock
        self._leeway = leeway

    def trusts(self, issuer: str) -> bool:
        return issuer in self.issuers

    async def verify(self, token: str) -> VerifiedIdToken:
        """The verified token, or IdTokenRejected saying why in a CI user's words (or
        IssuerUnavailable when the issuer's keys can't be fetched)."""
        if len(token) > MAX_TOKEN:
            raise IdTokenRejected(f"the ID token is longer than {MAX_TOKEN} bytes")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise IdTokenRejected("the subject_token is not a JWT (an OIDC ID token)") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise IdTokenRejected(
                f"the ID token is signed with {alg!r}; accepted: {', '.join(ALGORITHMS)}"
            )
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not self.trusts(issuer):
            raise IdTokenRejected(
                f"the issuer {str(issuer)[:200]!r} is not trusted by this registry"
                " (the operator lists trusted issuers in CARGOBAY_OIDC_ISSUERS)"
            )
        kid = header.get("kid")
        keys = await self.keys.candidates(issuer, kid if isinstance(kid, str) else None)
        if not keys:
            raise IdTokenRejected(
                f"the issuer {issuer} has no signing key with kid {str(kid)[:100]!r}"
            )
        claims = self._decode(token, alg, issuer, keys)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise IdTokenRejected("the ID token has no subject (sub)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            jti = hashlib.sha256(token.encode()).hexdigest()
        return VerifiedIdToken(
            issuer=issuer,
            subject=subject,
            claims=claims,
            expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC),
            replay_key=hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest(),
        )

    def _decode(self, token: str, alg: str, issuer: str, keys: list[Any]) -> dict[str, Any]:
        options: Any = {"verify_aud": False, "require": ["exp", "iat", "iss", "sub"]}
        bad_signature = False
        for key in keys:
            if not _fits(key, alg):
                continue
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    issuer=issuer,
                    leeway=self._leeway,
                    options=options,
                )
            except jwt.InvalidSignatureError:
                bad_signature = True
                continue
            except jwt.ExpiredSignatureError:
                raise IdTokenRejected("the ID token has expired") from None
            except jwt.ImmatureSignatureError:
                raise IdTokenRejected(
                    "the ID token is not valid yet (its nbf or iat is in the future)"
                ) from None
            except jwt.MissingRequiredClaimError as exc:
                raise IdTokenRejected(f"the ID token has no {exc.claim} claim") from None
            except jwt.PyJWTError as exc:
                raise IdTokenRejected(f"the ID token is not valid: {exc}") from None
            if float(claims["iat"]) > self._clock() + self._leeway:
                raise IdTokenRejected("the ID token is not valid yet (its iat is in the future)")
            return claims
        if bad_signature:
            raise IdTokenRejected(f"the ID token's signature does not verify with {issuer}'s keys")
        raise IdTokenRejected(f"{issuer} has no {alg} key to check this ID token")


def _fits(key: Any, alg: str) -> bool:
    return isinstance(key, rsa.RSAPublicKey if alg == "RS256" else ec.EllipticCurvePublicKey)
