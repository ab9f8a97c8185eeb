"""sha512 content: blobs pushed whole, in chunks and by mount, pulled, checked and deleted;
manifests that use sha512 descriptors and manifests pushed under a sha512 digest.

spec.md "Pushing blobs": the ``digest`` parameter of the closing PUT (or of a monolithic POST)
names the algorithm; image-spec ``descriptor.md`` registers sha256 and sha512, and a registry
serves content under the digest it was pushed with.
"""

from __future__ import annotations

import os

import httpx
import pytest
from apitest import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Registry, assert_error, describe, encode
from kit import digest_of

pytestmark = pytest.mark.reference_deviation("Distribution 2.8.2 stores sha512 as sha256")


def assert_blob(api: Registry, repo: str, digest: str, data: bytes) -> None:
    got = api.http.get(f"/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200, describe(got)
    assert got.content == data
    assert got.headers["docker-content-digest"] == digest, describe(got)
    head = api.http.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200, describe(head)
    assert head.headers["content-length"] == str(len(data)), describe(head)
    assert head.headers["docker-content-digest"] == digest, describe(head)
    assert head.content == b""


def assert_created(resp: httpx.Response, repo: str, digest: str) -> None:
    assert resp.status_code == 201, describe(resp)
    assert resp.headers["docker-content-digest"] == digest, describe(resp)
    assert resp.headers["location"].endswith(f"/v2/{repo}/blobs/{digest}"), describe(resp)


def test_monolithic_post(api: Registry, repo: str) -> None:
    """One POST with ``?digest=sha512:...`` and the body."""
    data = os.urandom(3000)
    digest = digest_of(data, "sha512")
    resp = api.http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_created(resp, repo, digest)
    assert_blob(api, repo, digest, data)


def test_post_then_put(api: Registry, repo: str) -> None:
    data = os.urandom(3000)
    digest = digest_of(data, "sha512")
    resp = api.http.put(
        api.with_params(api.upload_location(repo), digest=digest),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_created(resp, repo, digest)
    assert_blob(api, repo, digest, data)


def test_chunked(api: Registry, repo: str) -> None:
    """POST, three PATCHes with ``Content-Range``, PUT ``?digest=sha512:...``."""
    data = os.urandom(3 * 1024 + 17)
    digest = digest_of(data, "sha512")
    location = api.upload_location(repo)
    size = len(data) // 3 + 1
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        resp = api.request(
            "PATCH",
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(chunk) - 1}",
            },
        )
        assert resp.status_code == 202, describe(resp)
        assert resp.headers["range"] == f"0-{start + len(chunk) - 1}", describe(resp)
        location = resp.headers["location"]
    resp = api.request("PUT", api.with_params(location, digest=digest))
    assert_created(resp, repo, digest)
    assert_blob(api, repo, digest, data)


def test_chunked_with_the_wrong_sha512_changes_nothing(api: Registry, repo: str) -> None:
    data = os.urandom(2000)
    location = api.upload_location(repo)
    resp = api.request(
        "PATCH", location, content=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 202, describe(resp)
    wrong = digest_of(data + b"x", "sha512")
    bad = api.request("PUT", api.with_params(resp.headers["location"], digest=wrong))
    assert_error(bad, 400, "DIGEST_INVALID")
    assert not api.blob_exists(repo, wrong)
    assert not api.blob_exists(repo, digest_of(data, "sha512"))


def test_mount(api: Registry, repo: str, other_repo: str) -> None:
    data = os.urandom(2500)
    digest = api.push_blob(other_repo, data, algorithm="sha512")
    resp = api.http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": other_repo})
    assert_created(resp, repo, digest)
    assert_blob(api, repo, digest, data)


def test_delete(api: Registry, repo: str, other_repo: str) -> None:
    """Deleting a sha512 blob here leaves it where it was pushed too."""
    data = os.urandom(1000)
    digest = api.push_blob(repo, data, algorithm="sha512")
    api.push_blob(other_repo, data, algorithm="sha512")
    resp = api.http.delete(f"/v2/{repo}/blobs/{digest}")
    assert resp.status_code == 202, describe(resp)
    assert_error(api.http.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert api.http.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert_blob(api, other_repo, digest, data)
    assert_error(api.http.delete(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_same_bytes_under_both_digests(api: Registry, repo: str) -> None:
    data = os.urandom(1500)
    sha512 = api.push_blob(repo, data, algorithm="sha512")
    sha256 = api.push_blob(repo, data)
    assert_blob(api, repo, sha512, data)
    assert_blob(api, repo, sha256, data)


def sha512_image(api: Registry, repo: str) -> bytes:
    """An image manifest whose config and layer descriptors use sha512 digests."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = os.urandom(700)
    api.push_blob(repo, config, algorithm="sha512")
    api.push_blob(repo, layer, algorithm="sha512")
    return encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": digest_of(config, "sha512"),
                "size": len(config),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": digest_of(layer, "sha512"), "size": len(layer)}
            ],
        }
    )


def test_manifest_with_sha512_descriptors(api: Registry, repo: str) -> None:
    body = sha512_image(api, repo)
    resp = api.put_manifest(repo, "v1", body, OCI_MANIFEST)
    assert resp.status_code == 201, describe(resp)
    got = api.get_manifest(repo, "v1")
    assert got.status_code == 200 and got.content == body, describe(got)


def test_manifest_pushed_pulled_and_deleted_by_sha512_digest(api: Registry, repo: str) -> None:
    body = sha512_image(api, repo)
    digest = digest_of(body, "sha512")
    resp = api.put_manifest(repo, digest, body, OCI_MANIFEST)
    assert resp.status_code == 201, describe(resp)
    assert resp.headers["docker-content-digest"] == digest, describe(resp)
    got = api.get_manifest(repo, digest)
    assert got.status_code == 200 and got.content == body, describe(got)
    assert got.headers["docker-content-digest"] == digest, describe(got)
    head = api.http.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert head.status_code == 200 and head.content == b"", describe(head)
    assert head.headers["content-length"] == str(len(body)), describe(head)
    deleted = api.http.delete(f"/v2/{repo}/manifests/{digest}")
    assert deleted.status_code == 202, describe(deleted)
    assert_error(api.get_manifest(repo, digest), 404, "MANIFEST_UNKNOWN")


def test_manifest_put_under_a_sha512_digest_of_other_bytes_is_refused(
    api: Registry, repo: str
) -> None:
    body = sha512_image(api, repo)
    wrong = digest_of(body + b"\n", "sha512")
    assert_error(api.put_manifest(repo, wrong, body, OCI_MANIFEST), 400, "DIGEST_INVALID")
    assert_error(api.get_manifest(repo, wrong), 404, "MANIFEST_UNKNOWN")
