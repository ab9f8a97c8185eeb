"""``/token``: the Docker registry token protocol (distribution's ``docs/spec/auth/token.md``
and ``oauth.md``). GET with optional HTTP Basic (user + token) and ``scope`` parameters; POST
with the OAuth2 password grant form. Anonymous callers get a token for public pulls only.

POST also takes OAuth 2.0 Token Exchange (RFC 8693): a CI job's OIDC ID token for a workflow
token (trusted publishing, :mod:`cargobay.services.trusted_publishing`)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from cargobay.api.oci.body import Body
from cargobay.auth.principal import ANONYMOUS, Principal
from cargobay.errors import Unauthenticated, Unsupported
from cargobay.services.access import AccessService
from cargobay.services.registry_grants import issue_registry_token
from cargobay.services.trusted_publishing import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    ExchangeRefused,
    TrustedPublishing,
)

_MAX_FORM = 64 * 1024


def _json(data: dict[str, object], status: int = 200) -> Response:
    return Response(
        json.dumps(data),
        status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def _exchange(service: TrustedPublishing, form: dict[str, list[str]]) -> Response:
    """RFC 8693 §2: the answer, or an RFC 6749 §5.2 error (400 unless the issuer is down)."""
    try:
        for name in ("subject_token", "subject_token_type", "requested_token_type"):
            if len(form.get(name, [])) > 1:
                raise ExchangeRefused(f"{name} is given more than once", "invalid_request")
        done = await service.exchange(
            form.get("subject_token", [""])[0],
            form.get("subject_token_type", [""])[0],
            form.get("requested_token_type", [None])[0],
            [s for value in form.get("scope", []) for s in value.split()],
        )
    except ExchangeRefused as exc:
        return _json({"error": exc.error, "error_description": exc.message}, exc.status)
    return _json(
        {
            "access_token": done.token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": done.expires_in,
        }
    )


async def token(request: Request) -> Response:
    access: AccessService = request.scope["cargobay"].access
    client = request.client.host if request.client else ""
    params = request.query_params
    if request.method == "POST":
        body = await Body(request).read(_MAX_FORM, lambda: Unsupported("form too large"))
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = form.get("grant_type", [""])[0]
        if grant_type == GRANT_TYPE:
            return await _exchange(request.scope["cargobay"].trusted_publishing, form)
        if grant_type != "password":
            raise Unsupported(
                f"grant_type {grant_type!r} is not supported; use password or {GRANT_TYPE}"
            )
        username, password = form.get("username", [""])[0], form.get("password", [""])[0]
        who: Principal = (
            await access.from_secret(username, password, client) if password else ANONYMOUS
        )
        scopes = [s for value in form.get("scope", []) for s in value.split()]
        service = form.get("service", [None])[0]
    else:
        who = await access.authenticate(request.headers.get("authorization"), client)
        if who.registry_grant is not None:
            raise Unauthenticated("sign in with a token, not a registry token")
        scopes = [s for value in params.getlist("scope") for s in value.split()]
        service = params.get("service")
    if service is not None and service != access.service:
        raise Unauthenticated(f"unknown service {service!r}")
    issued = await issue_registry_token(access, who, scopes)
    return _json(
        {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
        }
    )
