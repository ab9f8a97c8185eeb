"""Cross-repository blob mount: the same image in a second repository.

skopeo (containers/image) remembers where it pushed each layer and, pushing the same layer to
another repository of the same registry, tries ``POST /v2/<to>/blobs/uploads/?mount=<digest>&
from=<repo>`` first; whether the registry mounts or makes it upload again, the result must be
byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from clients import Clients
from images import (
    PulledDir,
    assert_same_image,
    build_image,
    layout_contents,
    layout_manifest,
    random_bytes,
    referenced_blobs,
)
from kit import explain
from registry_http import upload_blob, with_params

pytestmark = pytest.mark.e2e


def assert_blob_served(http: httpx.Client, repo: str, digest: str, data: bytes) -> None:
    r = http.head(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200, explain(r)
    assert int(r.headers["content-length"]) == len(data), explain(r)
    assert r.headers["docker-content-digest"] == digest, explain(r)
    r = http.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200, explain(r)
    assert r.content == data, f"{repo}: GET {digest} returned other bytes"


def test_same_image_in_two_repositories(
    clients: Clients, registry, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1", layer_size=256 * 1024)
    _, manifest = layout_manifest(layout, "v1")
    blobs = layout_contents(layout, "v1")
    first, second, third = f"{repo}/first", f"{repo}/second", f"{repo}/third"

    for target in (first, second):
        clients.skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:v1",
            f"docker://{registry.address}/{target}:v1",
        )
    # registry to registry: skopeo reads from one repository and writes to another
    clients.skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{registry.address}/{first}:v1",
        f"docker://{registry.address}/{third}:v1",
    )

    for target in (first, second, third):
        for digest in referenced_blobs(manifest):
            assert_blob_served(http, target, digest, blobs[digest])
        pulled = PulledDir(tmp_path / f"pulled-{target.rsplit('/', 1)[1]}")
        clients.skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{registry.address}/{target}:v1",
            f"dir:{pulled.path}",
        )
        assert_same_image(pulled, manifest, blobs)


def test_mount_with_the_http_api(http: httpx.Client, repo: str) -> None:
    data = random_bytes(10_000)
    source, target, stranger = f"{repo}/source", f"{repo}/target", f"{repo}/stranger"
    digest = upload_blob(http, source, data)
    # A repository that never saw the blob: nothing to mount from.
    upload_blob(http, stranger, b"something else " + random_bytes(16))

    r = http.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201, explain(r)
    assert r.headers["docker-content-digest"] == digest, explain(r)
    assert r.headers["location"].endswith(f"/v2/{target}/blobs/{digest}"), explain(r)
    assert_blob_served(http, target, digest, data)
    assert_blob_served(http, source, digest, data)  # still there

    # Mounting from a repository that doesn't hold the blob must not link it: the registry
    # falls back to a plain upload session (202) and the blob stays unknown in the target.
    other = f"{repo}/other"
    r = http.post(f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": stranger})
    assert r.status_code == 202, explain(r)
    session = r.headers["location"]
    r = http.head(f"/v2/{other}/blobs/{digest}")
    assert r.status_code == 404, explain(r)
    # ... and that session is a working upload.
    r = http.put(
        with_params(session, digest=digest),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, explain(r)
    assert_blob_served(http, other, digest, data)
