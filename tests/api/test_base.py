"""GET /v2/ (distribution-spec: Determining Support, end-1)."""

from __future__ import annotations

import pytest
from apitest import Registry, describe


def test_version_check_is_200_with_api_version_header(api: Registry) -> None:
    resp = api.http.get("/v2/")
    assert resp.status_code == 200, describe(resp)
    assert resp.headers.get("docker-distribution-api-version") == "registry/2.0", describe(resp)


def test_version_check_without_trailing_slash_is_not_an_error(api: Registry) -> None:
    resp = api.http.get("/v2", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)


def test_head_version_check(api: Registry) -> None:
    resp = api.http.head("/v2/")
    assert resp.status_code == 200, describe(resp)
    assert resp.content == b""


@pytest.mark.cargobay_only("cargobay answers every error as an OCI JSON error body")
def test_unknown_v2_endpoint_is_a_json_404(api: Registry) -> None:
    resp = api.http.get("/v2/no-such/endpoint/at-all")
    assert resp.status_code == 404, describe(resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), describe(resp)
    errors = resp.json()["errors"]
    assert errors, describe(resp)
    assert {"code", "message", "detail"} <= set(errors[0]), describe(resp)


def test_unknown_v2_endpoint_is_404(api: Registry) -> None:
    resp = api.http.get("/v2/no-such/endpoint/at-all")
    assert resp.status_code == 404, describe(resp)
