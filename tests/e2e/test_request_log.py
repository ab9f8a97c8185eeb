"""The request log from the outside (``CARGOBAY_ACCESS_LOG=true``): one JSON line per request
with its id (the client's ``X-Request-Id`` when sane, else a new one, echoed back), route
template, status, bytes and who; and no secret used against the server anywhere in its log."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import httpx
import pytest
from kit import Oci, digest_of, image

pytestmark = pytest.mark.e2e

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay's own log", allow_module_level=True)


def test_one_line_per_request_and_no_secret_in_the_log(
    server_factory: Any, remember_secrets: Any
) -> None:
    server = server_factory(access_log=True, workers=2)
    secrets = [server.token]
    http = httpx.Client(base_url=server.url, timeout=30)
    auth = (server.user, server.token)
    mine = http.get("/v2/", auth=auth, headers={"X-Request-Id": "trace-4711"})
    assert mine.status_code == 200 and mine.headers["x-request-id"] == "trace-4711"
    made = http.get("/v2/", headers={"X-Request-Id": "bad id \t" + "x" * 300})
    assert made.status_code == 401
    assert len(made.headers["x-request-id"]) == 32 and " " not in made.headers["x-request-id"]
    # A registry (bearer) token, a pushed blob and manifest, a pull.
    token = http.get(
        "/token", params={"scope": "repository:api/logged:pull,push"}, auth=auth
    ).json()["token"]
    secrets.append(token)
    built = image(layers=0)
    (config,), manifest = built.blobs.values(), built.manifest
    with Oci.connect(server.url, token=token) as oci:
        oci.push_image("api/logged", "v1", built)
        assert oci.get_blob("api/logged", digest_of(config)).content == config
    # A new personal access token through the REST API; wrong secrets of every kind.
    created = http.post("/api/v3/user/tokens", json={"scopes": ["read:packages"]}, auth=auth).json()
    secrets.append(created["token"])
    wrong = ["cbp_wrongwrongwrongwrong0123456789", "not-a-token-but-a-password-9876"]
    secrets += wrong
    for secret in wrong:
        assert http.get("/v2/", auth=(server.user, secret)).status_code == 401
        assert (
            http.get("/api/v3/user", headers={"Authorization": f"token {secret}"}).status_code
            == 401
        )
    http.close()
    secrets += [base64.b64encode(f"{server.user}:{s}".encode()).decode() for s in secrets]
    for secret in secrets:  # and checked in every server log when the session ends
        remember_secrets(secret)

    deadline = time.monotonic() + 10
    while True:  # workers write their lines as they answer
        text = server.log_path.read_text(errors="replace")
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        if (
            any(
                line.get("status") == 200 and line["route"] == "/v2/{name}/blobs/{digest}"
                for line in lines
            )
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.2)
    for secret in secrets:
        assert secret not in text, "a secret reached the log"
    traced = [line for line in lines if line["request_id"] == "trace-4711"]
    assert len(traced) == 1
    assert traced[0]["route"] == "/v2/" and traced[0]["status"] == 200
    assert traced[0]["method"] == "GET" and traced[0]["user_id"] and traced[0]["token_id"]
    pushes = [line for line in lines if line["route"] == "/v2/{name}/manifests/{reference}"]
    assert pushes[-1]["status"] == 201 and pushes[-1]["repository"] == "api/logged"
    assert pushes[-1]["bytes_in"] == len(manifest)
    blob = [line for line in lines if line["route"] == "/v2/{name}/blobs/{digest}"]
    assert blob[-1]["bytes_out"] == len(config)
    assert {line["route"] for line in lines} >= {"/token", "/api/v3/user/tokens", "/api/v3/user"}
