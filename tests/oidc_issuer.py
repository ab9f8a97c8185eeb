"""A real OIDC issuer for the trusted-publishing tests: discovery and a JWKS served over HTTP on
127.0.0.1 (a free port), signing keys (RSA 2048 and EC P-256) made per run with
``cryptography``, and ID tokens shaped like the CI systems' (GitHub Actions claims by default).

Every request the issuer answers is recorded (``issuer.requests``), so a test can assert that
the registry never contacted it, or contacted it exactly so often.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks"
#: GitHub/Forgejo Actions' ID-token request endpoint (``ACTIONS_ID_TOKEN_REQUEST_URL``).
ACTIONS = "/actions/idtoken"


@dataclass
class SigningKey:
    kid: str
    alg: str  # RS256 or ES256
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        )
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(alg: str = "RS256") -> SigningKey:
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(f"{alg.lower()}-{uuid.uuid4().hex[:12]}", alg, private)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issuer:
    """Start with :meth:`start`; ``url`` is the issuer identifier (``iss``)."""

    keys: list[SigningKey] = field(default_factory=lambda: [new_key("RS256"), new_key("ES256")])
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    #: What ``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` must be, and the claims of the tokens
    #: :data:`ACTIONS` hands out (for the ``audience`` it is asked for).
    request_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    job_claims: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls) -> Issuer:
        issuer = cls()
        owner = issuer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                if self.path == DISCOVERY:
                    body = {
                        "issuer": owner.url,
                        "jwks_uri": owner.url + JWKS,
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }
                elif self.path == JWKS:
                    body = {"keys": [k.public_jwk for k in owner.keys]}
                elif self.path.startswith(ACTIONS + "?"):
                    query = parse_qs(urlsplit(self.path).query)
                    wanted = f"Bearer {owner.request_token}"
                    if self.headers.get("Authorization") != wanted:
                        self.send_error(401)
                        return
                    body = {"value": owner.mint(query["audience"][0], **owner.job_claims)}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        issuer.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=issuer.server.serve_forever, daemon=True).start()
        return issuer

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def actions_env(self) -> dict[str, str]:
        """What GitHub/Forgejo Actions set in a job allowed to request ID tokens."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}{ACTIONS}?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    def key(self, alg: str = "RS256") -> SigningKey:
        return next(k for k in self.keys if k.alg == alg)

    def key_fetches(self) -> int:
        return self.requests.count(JWKS)

    # -- ID tokens ---------------------------------------------------------------------------

    def claims(self, audience: str, **claims: Any) -> dict[str, Any]:
        """GitHub Actions' claims for a push to ``main`` of ``repository`` (override any)."""
        now = int(time.time())
        repository = claims.pop("repository", "acme/app")
        ref = claims.pop("ref", "refs/heads/main")
        base = {
            "iss": self.url,
            "aud": audience,
            "sub": f"repo:{repository}:ref:{ref}",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "repository": repository,
            "repository_owner": (repository or "/").split("/")[0] or None,
            "ref": ref,
            "ref_type": "branch",
            "event_name": "push",
            "workflow": "publish",
            "actor": "octocat",
        }
        return {**base, **claims}

    def mint(
        self,
        audience: str,
        *,
        alg: str = "RS256",
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed ID token (claims of :meth:`claims`; a claim given as None is left out)."""
        key = key or self.key(alg)
        payload = {k: v for k, v in self.claims(audience, **claims).items() if v is not None}
        return jwt.encode(
            payload, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})}
        )

    def unsigned(self, audience: str, **claims: Any) -> str:
        """The same claims with ``alg: none`` and no signature."""
        header = {"alg": "none", "typ": "JWT", "kid": self.key().kid}
        payload = self.claims(audience, **claims)
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."

    def hs256_with_public_key(self, audience: str, **claims: Any) -> str:
        """HS256 with the issuer's RSA public key (PEM) as the HMAC secret: the classic
        algorithm-confusion forgery anyone can make."""
        key = self.key("RS256")
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        payload = self.claims(audience, **claims)
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        mac = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
