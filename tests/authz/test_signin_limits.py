"""Failed sign-ins are limited per client and user name, and never lock out a valid token."""

from __future__ import annotations

import os

import httpx
import pytest

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay accounts", allow_module_level=True)


def test_failures_are_limited_but_a_valid_token_still_works(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(sign_in_failures=3, sign_in_window=300)
    assert server.user and server.token
    bad = "cbp_" + "A" * 36
    statuses = []
    for _ in range(5):
        r = httpx.get(f"{server.url}/v2/", auth=(server.user, bad))
        statuses.append((r.status_code, r.json()["errors"][0]["code"]))
    assert statuses[:2] == [(401, "UNAUTHORIZED")] * 2
    assert statuses[2:] == [(429, "TOOMANYREQUESTS")] * 3
    token = httpx.get(
        f"{server.url}/token",
        params={"scope": "repository:api/x:pull"},
        auth=(server.user, "not-a-token-but-a-password"),
    )
    assert token.status_code == 429
    # The owner of the name being attacked, with the right token: not locked out.
    ok = httpx.get(f"{server.url}/v2/", auth=(server.user, server.token))
    assert ok.status_code == 200, ok.text


def test_malformed_scopes_grant_nothing_and_never_fail(registry) -> None:  # type: ignore[no-untyped-def]
    import jwt

    scopes = [
        "repository:../../etc:pull",
        "repository:UPPER/case:pull",
        "garbage",
        "registry:catalog:*",
        "repository:a:b:c:pull",
        "repository:api/fine:pull,bogus",
    ]
    r = httpx.get(
        f"{registry.url}/token", params=[("scope", s) for s in scopes], auth=registry.auth
    )
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    # Only the well-formed scope counts, and of its actions only the known one: the test user
    # may create ``api/fine`` (it owns ``api``), so a token asked for before it exists grants
    # what the user will have once it does.
    assert claims["access"] == [{"type": "repository", "name": "api/fine", "actions": ["pull"]}]
