"""One client's garbage never locks out valid credentials (``/v2/``, ``/token``, REST); the
catalog lists exactly what the caller may read, also with a registry token; failures are
counted once for every replica when they share Redis."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import httpx
import pytest
import redis
from authzkit import PAT_RE, Cli, basic, bearer, catalog, client, only_token, push_image

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay accounts", allow_module_level=True)

SCOPES = "read:packages,write:packages,delete:packages"
GARBAGE = [
    "Basic !!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    basic("tester", "a-password-not-a-token"),
    basic("someone", "cbp_" + "A" * 36),
    bearer("cbp_" + "B" * 36),
    bearer("cbw_" + "C" * 36),
    bearer("eyJhbGciOiJIUzI1NiJ9.garbage.garbage"),
    "Digest username=x",
    "Bearer",
]


def _hammer(base: str) -> list[int]:
    """Every kind of bad credentials, several times, at /v2/, /token and the REST API."""
    statuses = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(3):
            for header in GARBAGE:
                auth = {"Authorization": header}
                statuses.append(http.get("/v2/", headers=auth).status_code)
                statuses.append(http.get("/token", headers=auth).status_code)
                statuses.append(http.get("/api/v3/user", headers=auth).status_code)
            form = {"grant_type": "password", "username": "tester", "password": "cbp_" + "D" * 36}
            statuses.append(http.post("/token", data=form).status_code)
    return statuses


def _valid_credentials_work(server: Any) -> None:
    assert server.user and server.token
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for header in (basic(server.user, server.token), bearer(server.token)):
            r = http.get("/v2/", headers={"Authorization": header})
            assert r.status_code == 200, r.text
        r = http.get("/v2/", headers={"Authorization": basic("any-name", server.token)})
        assert r.status_code == 200, r.text
        r = http.get("/token", params={"scope": "repository:api/x:pull"}, auth=server.auth)
        assert r.status_code == 200, r.text
        registry_token = r.json()["token"]
        r = http.get("/v2/", headers={"Authorization": bearer(registry_token)})
        assert r.status_code == 200, r.text
        form = {"grant_type": "password", "username": server.user, "password": server.token}
        assert http.post("/token", data=form).status_code == 200
        for header in (bearer(server.token), f"token {server.token}"):
            r = http.get("/api/v3/user", headers={"Authorization": header})
            assert r.status_code == 200, r.text


def test_garbage_from_one_client_never_locks_out_valid_credentials(server_factory: Any) -> None:
    server = server_factory(sign_in_failures=3, sign_in_window=300)
    statuses = _hammer(server.url)
    assert 429 in statuses  # the garbage itself is limited...
    assert all(s in (400, 401, 429) for s in statuses), statuses
    _valid_credentials_work(server)  # ...the valid credentials from the same address are not
    after = httpx.get(f"{server.url}/v2/", headers={"Authorization": basic("x", "cbp_" + "E" * 36)})
    assert after.status_code == 429  # and the limit still holds for the garbage


def test_the_catalog_lists_what_the_caller_may_read(server_factory: Any) -> None:
    server = server_factory()
    cli = Cli(server.data_dir, server.env)
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    results = cli.batch(
        [
            ["user", "create", alice],
            ["token", "create", "--user", alice, "--scopes", SCOPES],
            ["user", "create", bob],
            ["token", "create", "--user", bob, "--scopes", SCOPES],
        ]
    )
    alice_token = only_token(results[1].stdout.strip(), PAT_RE)
    bob_token = only_token(results[3].stdout.strip(), PAT_RE)
    private = f"{alice}/secret"
    with client(server.url, basic(alice, alice_token)) as http:
        pushed, _, _ = push_image(http, private, "v1", "catalog")
        assert pushed.status_code == 201, pushed.text
        assert http.get(f"/v2/{private}/tags/list").status_code == 200
        r, names = catalog(http)
        assert r.status_code == 200 and private in names
    # Docker's way: a registry token for the catalog, then the catalog with it.
    for scope in ("registry:catalog:*", f"repository:{private}:pull"):
        r = httpx.get(f"{server.url}/token", params={"scope": scope}, auth=(alice, alice_token))
        with client(server.url, bearer(r.json()["token"])) as http:
            r, names = catalog(http)
            assert r.status_code == 200 and private in names, (scope, names)
    for who in (basic(bob, bob_token), None):
        r = httpx.get(f"{server.url}/token", params={"scope": "registry:catalog:*"},
                      headers={"Authorization": who} if who else {})  # fmt: skip
        for header in filter(None, (who, bearer(r.json()["token"]))):
            with client(server.url, header) as http:
                r, names = catalog(http)
                assert r.status_code == 200 and private not in names, names


REDIS_URL = os.environ.get("CARGOBAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_replicas_sharing_redis_share_one_limit(server_factory: Any) -> None:
    """Two servers (two replicas) on one Redis: failures at either count against one limit."""
    try:
        store = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        store.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL} ({exc}); set CARGOBAY_TEST_REDIS_URL")
    for key in store.scan_iter("cargobay*client:127.0.0.1*"):
        store.delete(key)  # this address's failures from an earlier run
    first = server_factory(sign_in_failures=4, sign_in_window=60, redis_url=REDIS_URL)
    second = server_factory(sign_in_failures=4, sign_in_window=60, redis_url=REDIS_URL)
    bad = {"Authorization": basic(f"nobody-{uuid.uuid4().hex[:6]}", "cbp_" + "F" * 36)}
    statuses = [httpx.get(f"{s.url}/v2/", headers=bad).status_code for s in (first, second) * 3]
    assert statuses == [401, 401, 401, 429, 429, 429]
    _valid_credentials_work(first)
    _valid_credentials_work(second)
    for key in store.scan_iter("cargobay*client:127.0.0.1*"):
        store.delete(key)
