"""Open upload sessions are bounded per principal, across worker processes (the count lives in
the metadata store). Past the bound: 429 TOOMANYREQUESTS with Retry-After. Finished, cancelled
and expired sessions free their slot; other principals are not affected."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from images import random_bytes
from kit import digest_of, explain
from registry_http import with_params

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.skipif(ON_REFERENCE, reason="the bound is cargobay's"),
]

LIMIT = 4
TIMEOUT = 4.0  # upload_timeout: idle sessions expire after this many seconds


def open_sessions(http: httpx.Client, repo: str, count: int) -> list[str]:
    locations = []
    for _ in range(count):
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        locations.append(r.headers["location"])
    return locations


def refused(http: httpx.Client, repo: str) -> httpx.Response:
    r = http.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 429, explain(r)
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS", explain(r)
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= TIMEOUT + 1, explain(r)
    return r


def test_open_sessions_are_bounded_per_principal(server_factory: Any) -> None:
    server = server_factory(
        workers=2, max_upload_sessions=LIMIT, upload_timeout=TIMEOUT, upload_sweep_interval=3600
    )
    repo = "e2e/limits"
    server.cli("user", "create", "other")
    other_token = server.cli("token", "create", "--user", "other", "--scopes", "write:packages")
    with (
        httpx.Client(base_url=server.url, timeout=30, auth=server.auth) as http,
        httpx.Client(base_url=server.url, timeout=30, auth=("other", other_token)) as other,
    ):
        # New connections per request land on both workers: the bound is one count for both.
        locations = open_sessions(http, repo, LIMIT)
        refused(http, repo)
        data = random_bytes(1000)
        r = http.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest_of(data)},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 429, explain(r)  # a monolithic push opens a session too

        # Another principal has its own bound.
        assert other.post("/v2/other/pkg/blobs/uploads/").status_code == 202

        # Cancelling frees a slot.
        assert http.delete(locations.pop()).status_code == 204
        locations += open_sessions(http, repo, 1)
        refused(http, repo)

        # Finishing frees a slot.
        r = http.put(with_params(locations.pop(), digest=digest_of(data)), content=data)
        assert r.status_code == 201, explain(r)
        locations += open_sessions(http, repo, 1)
        refused(http, repo)

        # Expiring frees them all (no sweep needed: expired sessions don't count).
        time.sleep(TIMEOUT + 0.5)
        open_sessions(http, repo, LIMIT)
        refused(http, repo)
