"""A first push that is refused leaves nothing anyone can see: not in ``/v2/_catalog``, no tags
list (NAME_UNKNOWN, as for a name never pushed), not in the REST API's package list or package,
not on the owner's package list nor as a package page. The same name can be pushed once the
refusal's cause is gone, and only then does it show."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from kit import Operator, digest_of
from kit.media import OCI_MANIFEST as MANIFEST
from test_web_immutable import push
from webui import WebSession

OWNER, PASSWORD = "refusy", "a long enough password"
ORG = "refusyorg"


def shown(registry: httpx.Client, web: WebSession, package: str) -> dict[str, Any]:
    """Where ``ORG/package`` shows to its own pusher (an owner of the organization)."""
    catalog = registry.get("/v2/_catalog", params={"n": 1000}).json()["repositories"]
    listed = registry.get(f"/api/v3/orgs/{ORG}/packages", params={"package_type": "container"})
    assert listed.status_code == 200, listed.text
    return {
        "catalog": f"{ORG}/{package}" in catalog,
        "tags": registry.get(f"/v2/{ORG}/{package}/tags/list").status_code,
        "rest list": package in [p["name"] for p in listed.json()],
        "rest": registry.get(f"/api/v3/orgs/{ORG}/packages/container/{package}").status_code,
        "page list": f'/packages/container/package/{package}"'
        in web.get(f"/orgs/{ORG}/packages").text,
        "page": web.get(f"/orgs/{ORG}/packages/container/package/{package}").status_code,
    }


NOWHERE = {
    "catalog": False,
    "tags": 404,
    "rest list": False,
    "rest": 404,
    "page list": False,
    "page": 404,
}
EVERYWHERE = {
    "catalog": True,
    "tags": 200,
    "rest list": True,
    "rest": 200,
    "page list": True,
    "page": 200,
}


def test_a_refused_first_push_leaves_no_package(server: Any) -> None:
    outputs = (
        Operator()
        .user(OWNER, PASSWORD)
        .add("token", "create", "--user", OWNER, "--scopes", "read:packages,write:packages")
        .add("org", "create", ORG, "--owner", OWNER)
        .add("quota", "set", ORG, "1kB")
        .run(server)
    )
    registry = httpx.Client(base_url=server.url, auth=(OWNER, outputs[1]), timeout=30)
    web = WebSession(server.url)
    assert web.sign_in(OWNER, PASSWORD).status_code == 303

    # Over the quota: the blob upload is refused (403 DENIED).
    big = os.urandom(4000)
    r = registry.post(
        f"/v2/{ORG}/big/blobs/uploads/", params={"digest": digest_of(big)}, content=big
    )
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
    assert shown(registry, web, "big") == NOWHERE

    # A manifest whose blobs were never pushed is refused (MANIFEST_BLOB_UNKNOWN).
    missing = os.urandom(16)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(missing),
            "size": len(missing),
        },
        "layers": [],
    }
    r = registry.put(
        f"/v2/{ORG}/broken/manifests/v1",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": MANIFEST},
    )
    assert r.status_code == 400, r.text
    assert shown(registry, web, "broken") == NOWHERE

    # Room again: the same names are pushed, and show from their first version on.
    Operator().add("quota", "clear", ORG).run(server)
    assert push(registry, f"{ORG}/big", "v1") == 201
    assert push(registry, f"{ORG}/broken", "v1") == 201
    assert shown(registry, web, "big") == EVERYWHERE
    assert shown(registry, web, "broken") == EVERYWHERE
