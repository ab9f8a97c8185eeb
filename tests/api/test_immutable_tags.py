"""Immutable tags, from the outside: rules set through the REST API and the operator CLI; a
tag matching one can't be moved or deleted (409 DENIED, with a message saying why), pushing
the same digest to it again succeeds, other tags move freely, and removing the rule lifts it.
Also the storage a package uses (REST) and a namespace uses (CLI)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest
from apitest import OCI_MANIFEST, Registry, assert_error

pytestmark = pytest.mark.cargobay_only("immutable tags are a cargobay feature")


def rules_url(name: str) -> str:
    return f"/api/v3/orgs/api/packages/container/{name.split('/', 1)[1]}/immutable-tags"


@pytest.fixture
def rest(registry: Any) -> httpx.Client:
    return httpx.Client(
        base_url=registry.url,
        headers={"Authorization": f"Bearer {registry.token}"},
        timeout=30,
    )


def test_an_immutable_tag_cannot_be_moved_or_deleted(api: Registry, rest: httpx.Client) -> None:
    repo = f"api/immutable-{secrets.token_hex(4)}"
    first, body = api.push_image(repo, "v1.0")
    r = rest.put(rules_url(repo), json={"patterns": ["v*", "release-[0-9]"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"patterns": ["release-[0-9]", "v*"]}
    assert rest.get(rules_url(repo)).json() == {"patterns": ["release-[0-9]", "v*"]}

    # The same digest again: fine (build tools do this).
    assert api.put_manifest(repo, "v1.0", body, OCI_MANIFEST).status_code == 201
    # Another image under it: refused, and the tag still names the first.
    second, other = api.push_image(repo)
    resp = api.put_manifest(repo, "v1.0", other, OCI_MANIFEST)
    assert_error(resp, 409, "DENIED")
    message = resp.json()["errors"][0]["message"]
    assert "immutable" in message and "'v*'" in message and first in message
    assert api.get_manifest(repo, "v1.0").headers["docker-content-digest"] == first
    # A new immutable tag can be created once; a tag no rule matches moves freely.
    assert api.put_manifest(repo, "v2.0", other, OCI_MANIFEST).status_code == 201
    assert api.put_manifest(repo, "latest", body, OCI_MANIFEST).status_code == 201
    assert api.put_manifest(repo, "latest", other, OCI_MANIFEST).status_code == 201
    assert api.put_manifest(repo, "release-10", body, OCI_MANIFEST).status_code == 201
    assert api.put_manifest(repo, "release-10", other, OCI_MANIFEST).status_code == 201

    # Deleting the tag, or the version it names (registry API and REST API): refused.
    assert_error(api.request("DELETE", f"/v2/{repo}/manifests/v1.0"), 409, "DENIED")
    assert_error(api.request("DELETE", f"/v2/{repo}/manifests/{first}"), 409, "DENIED")
    versions = rest.get(rules_url(repo).replace("/immutable-tags", "/versions")).json()
    version_id = next(v["id"] for v in versions if v["name"] == first)
    r = rest.delete(rules_url(repo).replace("/immutable-tags", f"/versions/{version_id}"))
    assert r.status_code == 409 and "immutable" in r.json()["message"], r.text
    assert sorted(api.tags(repo)) == ["latest", "release-10", "v1.0", "v2.0"]
    assert api.get_manifest(repo, first).status_code == 200
    # A tag that does not exist is still unknown, immutable pattern or not.
    assert_error(api.request("DELETE", f"/v2/{repo}/manifests/v9"), 404, "MANIFEST_UNKNOWN")

    # Without the rule, the tag moves and goes like any other.
    assert rest.put(rules_url(repo), json={"patterns": []}).json() == {"patterns": []}
    assert api.put_manifest(repo, "v1.0", other, OCI_MANIFEST).status_code == 201
    assert api.request("DELETE", f"/v2/{repo}/manifests/v1.0").status_code == 202
    assert second


def test_rules_from_the_operator_cli_and_bad_patterns(
    registry: Any, api: Registry, rest: httpx.Client
) -> None:
    repo = f"api/immutable-{secrets.token_hex(4)}"
    api.push_image(repo, "stable")
    out = registry.cli("immutable-tags", "add", repo, "stable", "v*")
    assert out == f"{repo}: immutable tags stable v*"
    assert rest.get(rules_url(repo)).json() == {"patterns": ["stable", "v*"]}
    _, other = api.push_image(repo)
    assert_error(api.put_manifest(repo, "stable", other, OCI_MANIFEST), 409, "DENIED")
    out = registry.cli("immutable-tags", "remove", repo, "stable")
    assert out == f"{repo}: immutable tags v*"
    assert api.put_manifest(repo, "stable", other, OCI_MANIFEST).status_code == 201
    for bad in (["has space"], ["x" * 129], ["a/b"], [f"p{i}" for i in range(51)]):
        r = rest.put(rules_url(repo), json={"patterns": bad})
        assert r.status_code == 422, (bad, r.text)
    assert rest.get(rules_url(repo)).json() == {"patterns": ["v*"]}
    unknown = rest.get("/api/v3/orgs/api/packages/container/no-such-package/immutable-tags")
    assert unknown.status_code == 404


def test_usage_of_a_package_and_a_namespace(
    registry: Any, api: Registry, rest: httpx.Client
) -> None:
    """What a package takes, through the REST API, and its namespace's total from the CLI."""
    repo = f"api/usage-{secrets.token_hex(4)}"
    _, first = api.push_image(repo, "v1", layers=2)
    _, second = api.push_image(repo, "v2", layers=1)
    r = rest.get(rules_url(repo).replace("/immutable-tags", "/usage"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["blobs"], got["versions"]) == (5, 2)  # two configs, three layers
    assert got["stored"] == got["as_pushed"] > len(first) + len(second) + 3 * 512
    out = registry.cli("usage", repo, "--json")
    assert json.loads(out) == got
    assert registry.cli("usage", "api").startswith("api: ")
    missing = rest.get("/api/v3/orgs/api/packages/container/no-such-package/usage")
    assert missing.status_code == 404
