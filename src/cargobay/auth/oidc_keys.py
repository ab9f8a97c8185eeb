"""The signing keys of allow-listed OIDC issuers (trusted publishing).

Only issuers the operator lists (``CARGOBAY_OIDC_ISSUERS``) are ever contacted: their discovery
document (``/.well-known/openid-configuration``), then the ``jwks_uri`` it names, which must be
on the issuer's own origin. Requests have a short overall deadline, a size cap and follow no
redirect. Keys are cached for a bounded time; a key id the cache doesn't know causes at most one
refetch per issuer per ``refresh_every`` seconds, so tokens with made-up key ids can't make the
registry hammer an issuer.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cargobay.errors import CargobayError

#: Seconds one discovery or JWKS request may take, all in all.
TIMEOUT = 5.0
#: Largest discovery document or JWKS accepted, in bytes.
MAX_DOCUMENT = 256 * 1024
#: Seconds fetched keys are used before they are fetched again.
KEYS_TTL = 600.0
#: Least seconds between two fetches of one issuer's keys (unknown key ids, failures).
REFRESH_EVERY = 60.0

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
Fetch = Callable[[str], Any]


class IssuerUnavailable(CargobayError):
    """the issuer's signing keys could not be fetched"""


def _private_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def parse_issuers(value: str) -> tuple[str, ...]:
    """The issuer URLs of ``CARGOBAY_OIDC_ISSUERS`` (comma-separated), each exactly as the
    ``iss`` claim must say it. ``https://`` only, except ``http://`` on a loopback or private
    address (an issuer inside the operator's network). Raises ValueError on anything else."""
    issuers = []
    for raw in value.split(","):
        issuer = raw.strip()
        if not issuer:
            continue
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"OIDC issuer {issuer!r} is not an http(s) URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"OIDC issuer {issuer!r} must have no query, fragment or user")
        if parts.scheme == "http" and not _private_host(parts.hostname):
            raise ValueError(
                f"OIDC issuer {issuer!r}: plain http only for loopback or private addresses"
            )
        issuers.append(issuer)
    return tuple(dict.fromkeys(issuers))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError: a redirect could leave the issuer


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch_json(url: str) -> Any:
    """GET ``url`` as JSON within :data:`TIMEOUT` and :data:`MAX_DOCUMENT` (blocking)."""
    deadline = time.monotonic() + TIMEOUT
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked by parse_issuers)
        url, headers={"Accept": "application/json", "User-Agent": "cargobay"}
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            body = b""
            while len(body) <= MAX_DOCUMENT:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise IssuerUnavailable(f"{url} took longer than {TIMEOUT:g} s")
                chunk = response.read1(16384)  # returns what arrived: the deadline holds
                if not chunk:
                    break
                body += chunk
    except urllib.error.HTTPError as exc:
        raise IssuerUnavailable(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise IssuerUnavailable(f"{url} could not be reached: {exc}") from None
    if len(body) > MAX_DOCUMENT:
        raise IssuerUnavailable(f"{url} answered more than {MAX_DOCUMENT} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise IssuerUnavailable(f"{url} did not answer JSON") from None


def _same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port) == (y.scheme, y.hostname, y.port)


def _usable(jwk: Any) -> tuple[str | None, PublicKey] | None:
    """``(kid, key)`` of a JWK that can check RS256 or ES256 signatures, else None (symmetric
    keys, encryption keys, other curves and short RSA keys are never used)."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC"):
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") not in ("RS256", "ES256"):
        return None
    try:
        key = jwt.PyJWK(jwk).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return (jwk.get("kid"), key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return (jwk.get("kid"), key)
    return None


@dataclass
class _Cached:
    keys: list[tuple[str | None, PublicKey]] = field(default_factory=list)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: anyio.Lock = field(default_factory=anyio.Lock)


class IssuerKeys:
    """Signing keys of the allow-listed issuers, fetched on first use and cached."""

    def __init__(
        self,
        issuers: tuple[str, ...],
        *,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = KEYS_TTL,
        refresh_every: float = REFRESH_EVERY,
    ) -> None:
        self.issuers = issuers
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._refresh_every = refresh_every
        self._cache = {issuer: _Cached() for issuer in issuers}

    async def candidates(self, issuer: str, kid: str | None) -> list[PublicKey]:
        """The keys of ``issuer`` (which must be listed) that may have signed a token with key
        id ``kid`` (all keys when the token names none). Raises IssuerUnavailable."""
        cached = self._cache[issuer]
        async with cached.lock:
            now = self._clock()
            if now - cached.fetched_at >= self._ttl:
                await self._refresh(issuer, cached, now)
            found = _matching(cached.keys, kid)
            if not found and now - cached.attempted_at >= self._refresh_every:
                await self._refresh(issuer, cached, now)  # a rotated key, maybe
                found = _matching(cached.keys, kid)
            return found

    async def _refresh(self, issuer: str, cached: _Cached, now: float) -> None:
        if now - cached.attempted_at < self._refresh_every:
            if now - cached.fetched_at < self._ttl:
                return
            raise IssuerUnavailable(
                f"the signing keys of {issuer} could not be fetched; retry in a minute"
            )
        cached.attempted_at = now
        keys = await anyio.to_thread.run_sync(self._fetch_keys, issuer)
        cached.keys = keys
        cached.fetched_at = self._clock()

    def _fetch_keys(self, issuer: str) -> list[tuple[str | None, PublicKey]]:
        discovery = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
            raise IssuerUnavailable(f"the discovery document of {issuer} names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _same_origin(jwks_uri, issuer):
            raise IssuerUnavailable(f"the jwks_uri of {issuer} is not on the issuer's origin")
        jwks = self._fetch(jwks_uri)
        raw = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(raw, list):
            raise IssuerUnavailable(f"{jwks_uri} is not a JSON Web Key Set")
        return [usable for jwk in raw[:100] if (usable := _usable(jwk)) is not None]


def _matching(keys: list[tuple[str | None, PublicKey]], kid: str | None) -> list[PublicKey]:
    if kid is None:
        return [key for _, key in keys]
    return [key for key_id, key in keys if key_id == kid]
