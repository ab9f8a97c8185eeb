"""A registry keeping its blobs in S3 (the session's Ceph RGW): skopeo pushes and pulls byte for
byte; blob GETs are 307 redirects to presigned URLs (Range served there), or stream through the
registry when redirects are off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE, Clients
from images import (
    PulledDir,
    assert_same_image,
    build_image,
    layout_contents,
    layout_manifest,
    referenced_blobs,
)
from kit import digest_of, explain

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry is not configured for S3"),
]

MIB = 1024 * 1024


@pytest.fixture(params=[True, False], ids=["redirect", "stream"])
def s3_registry(
    request: pytest.FixtureRequest,
    server_factory: Any,
    s3_service: Any,
    s3_bucket: str,
    clients: Clients,
) -> Iterator[Any]:
    """cargobay with ``CARGOBAY_BLOB_STORE=s3`` on a fresh bucket (which it creates), blob
    redirects on or off; the clients are signed in to it."""
    server = server_factory(**s3_service.settings(s3_bucket, blob_redirect=request.param))
    if server.auth is not None:
        clients.store_credentials(server.address, *server.auth)
    yield server
    server.stop()


def push_and_pull(clients: Clients, server: Any, tmp_path: Path) -> dict[str, bytes]:
    """Push a two-layer image (one layer spans S3 parts) with skopeo, pull it back byte for
    byte; returns the pushed blobs."""
    layout = tmp_path / "src"
    build_image(layout, "v1", layer_size=23 * MIB, files={"etc/small": b"small file\n"})
    _, manifest = layout_manifest(layout, "v1")
    blobs = layout_contents(layout, "v1")
    ref = f"docker://{server.address}/e2e/s3:v1"
    clients.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", ref, timeout=300)
    clients.skopeo("copy", "--src-tls-verify=false", ref, f"dir:{tmp_path / 'pulled'}")
    assert_same_image(PulledDir(tmp_path / "pulled"), manifest, blobs)
    return {digest: blobs[digest] for digest in referenced_blobs(manifest)}


def test_push_pull_and_blob_gets_through_s3(
    clients: Clients, s3_registry: Any, s3_service: Any, tmp_path: Path
) -> None:
    redirect = s3_registry.env["CARGOBAY_BLOB_REDIRECT"] == "True"
    blobs = push_and_pull(clients, s3_registry, tmp_path)
    digest, data = max(blobs.items(), key=lambda item: len(item[1]))
    assert len(data) > 16 * MIB
    url = f"/v2/e2e/s3/blobs/{digest}"
    with httpx.Client(base_url=s3_registry.url, auth=s3_registry.auth, timeout=60) as http:
        head = http.head(url)
        assert head.status_code == 200, explain(head)
        assert int(head.headers["content-length"]) == len(data)
        assert head.headers["docker-content-digest"] == digest

        r = http.get(url)
        if redirect:
            assert r.status_code == 307, explain(r)
            assert r.headers["docker-content-digest"] == digest
            assert r.headers["location"].startswith(s3_service.endpoint + "/")
            assert r.content == b""
            # The presigned URL needs no credentials of the registry's.
            direct = httpx.get(r.headers["location"], timeout=60)
            assert direct.status_code == 200
            assert direct.content == data
        else:
            assert r.status_code == 200, explain(r)
            assert r.content == data

        # Whatever answers, Range is honoured; httpx follows the redirect with the same headers
        # (and drops the registry's Authorization, another origin).
        r = http.get(url, headers={"Range": "bytes=1000-2000999"}, follow_redirects=True)
        assert r.status_code == 206, explain(r)
        assert r.content == data[1000:2001000]
        assert r.headers["content-range"] == f"bytes 1000-2000999/{len(data)}"
        r = http.get(url, follow_redirects=True)
        assert r.status_code == 200
        assert r.content == data


def test_chunked_upload_over_http_is_stored_in_s3(s3_registry: Any, s3_service: Any) -> None:
    """PATCHes of 1 MiB (below S3's part minimum) make one blob, exact to the byte."""
    data = bytes(range(256)) * (4 * 1024) * 9  # 9 MiB
    with httpx.Client(base_url=s3_registry.url, auth=s3_registry.auth, timeout=60) as http:
        r = http.post("/v2/e2e/s3-chunked/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = r.headers["location"]
        for start in range(0, len(data), MIB):
            chunk = data[start : start + MIB]
            r = http.patch(
                location,
                content=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + len(chunk) - 1}",
                },
            )
            assert r.status_code == 202, explain(r)
            location = r.headers["location"]
        digest = digest_of(data)
        r = http.put(location, params={"digest": digest})
        assert r.status_code == 201, explain(r)
        r = http.get(f"/v2/e2e/s3-chunked/blobs/{digest}", follow_redirects=True)
        assert r.status_code == 200
        assert r.content == data
    bucket = s3_registry.env["CARGOBAY_S3_BUCKET"]
    listed = s3_service.client().list_objects_v2(Bucket=bucket, Prefix="uploads/")
    assert listed.get("KeyCount", 0) == 0
