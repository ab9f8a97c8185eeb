"""Repository names and hostile paths (distribution-spec: the ``<name>`` regular expression;
image-spec descriptor.md: digests; upload ids and references).

Whatever the path, the answer is a 4xx (never a 5xx), nothing outside the data directory is read,
written or deleted, and the server keeps serving.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apitest import (
    IS_REFERENCE,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    RawResponse,
    Registry,
    describe,
    descriptor,
    image_manifest,
)
from kit import digest_of


def check_refused(resp: RawResponse, what: str) -> None:
    """A client error: 400 NAME_INVALID-style, or 404/405 for paths that don't route."""
    method = what.split(" ", 1)[0]
    info = f"{what} -> {resp.status} {resp.headers.get('content-type')} {resp.body[:300]!r}"
    assert resp.status < 500, info
    if IS_REFERENCE:
        # Go's router answers unclean paths (".." segments, "//") with a 301 to the cleaned path.
        assert resp.status in (301, 400, 404, 405), info
        return
    assert resp.status in (400, 404, 405), info
    if method != "HEAD":
        assert resp.headers.get("content-type", "").startswith("application/json"), info
        assert b'"errors"' in resp.body, info


def check_name_invalid(resp: RawResponse, what: str) -> None:
    check_refused(resp, what)
    if resp.status == 400 and not IS_REFERENCE and not what.startswith("HEAD "):
        assert b"NAME_INVALID" in resp.body, f"{what} -> {resp.status} {resp.body[:300]!r}"


def name_requests(name: str) -> list[tuple[str, str, bytes]]:
    """(method, path, body) for the endpoints that take a repository name."""
    digest = digest_of(b"x")
    return [
        ("POST", f"/v2/{name}/blobs/uploads/", b""),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", b"x"),
        ("GET", f"/v2/{name}/blobs/{digest}", b""),
        ("HEAD", f"/v2/{name}/blobs/{digest}", b""),
        ("GET", f"/v2/{name}/manifests/latest", b""),
        ("PUT", f"/v2/{name}/manifests/latest", b"{}"),
        ("DELETE", f"/v2/{name}/manifests/{digest}", b""),
        ("GET", f"/v2/{name}/tags/list", b""),
    ] + ([] if IS_REFERENCE else [("GET", f"/v2/{name}/referrers/{digest}", b"")])


# -- valid and invalid names ------------------------------------------------------------------


def long_name(length: int) -> str:
    head = f"api/long-{uuid.uuid4().hex[:8]}/"
    parts = []
    remaining = length - len(head)
    while remaining > 0:
        size = min(remaining, 50)
        if remaining - size == 1:  # never leave a single char for a separator
            size -= 1
        parts.append("n" * size)
        remaining -= size + 1
    name = head + "/".join(parts)
    assert len(name) == length, (len(name), length)
    return name


@pytest.mark.parametrize(
    "suffix",
    ["a", "a/b/c/d/e", "a.b_c__d---e", "0", "x9/y-8.z_7", "a-b/c__d/e.f"],
)
def test_valid_names_work(api: Registry, suffix: str) -> None:
    name = f"api/names-{uuid.uuid4().hex[:8]}/{suffix}"
    data = os.urandom(50)
    digest = api.push_blob(name, data)
    resp = api.http.get(f"/v2/{name}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data
    api.push_image(name, "latest")
    assert api.tags(name) == ["latest"]


def test_name_of_255_characters_is_valid(api: Registry) -> None:
    name = long_name(255)
    _digest, body = api.push_image(name, "latest")
    resp = api.get_manifest(name, "latest")
    assert resp.status_code == 200, describe(resp)
    assert resp.content == body


@pytest.mark.reference_deviation("2.8.2 answers 500 UNKNOWN for names over 255 characters")
def test_name_of_256_characters_is_name_invalid(api: Registry) -> None:
    name = long_name(256)
    for method, path, body in name_requests(name):
        resp = api.raw(method, path, body, {"Content-Type": OCI_MANIFEST})
        assert resp.status == 400, f"{method} {path} -> {resp.status} {resp.body[:200]!r}"
        if method != "HEAD":
            assert b"NAME_INVALID" in resp.body, f"{method} {path} -> {resp.body[:200]!r}"


INVALID_NAMES = [
    "Upper",
    "api/Upper",
    "a..b",
    "a_-b",
    "a___b",
    "a-",
    "-a",
    "_a",
    ".a",
    "a.",
    "a/",
    "a//b",
    "a/.b",
    "a/-b",
    "a%20b",
    "a:b",
    "a@b",
    "%C3%A4",
    "a%00b",
    "a%5Cb",
]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_names_are_refused(api: Registry, name: str) -> None:
    for method, path, body in name_requests(name):
        resp = api.raw(method, path, body, {"Content-Type": OCI_MANIFEST})
        check_name_invalid(resp, f"{method} {path}")
    assert api.http.get("/v2/").status_code == 200


@pytest.mark.cargobay_only("reference routes most invalid names to a plain 404")
def test_invalid_name_with_valid_shape_is_name_invalid(api: Registry) -> None:
    for name in ("Upper/case", "a__-b", "a..b/c"):
        resp = api.http.post(f"/v2/{name}/blobs/uploads/")
        assert resp.status_code in (400, 404), describe(resp)
        if resp.status_code == 400:
            assert resp.json()["errors"][0]["code"] == "NAME_INVALID", describe(resp)


# -- hostile paths: nothing outside the data directory --------------------------------------------


@pytest.fixture(scope="module")
def sandbox(server_factory: Any) -> Iterator[tuple[Registry, Any, dict[Path, bytes]]]:
    """A dedicated server plus sentinel files around (and in) its data directory."""
    server = server_factory()
    token = f"SENTINEL-{uuid.uuid4().hex}".encode()
    data_dir: Path = server.data_dir
    sentinels = {
        data_dir.parent / "sentinel": token + b"-parent",
        data_dir.parent.parent / f"sentinel-{uuid.uuid4().hex[:8]}": token + b"-grandparent",
        data_dir / "sentinel": token + b"-data",
    }
    for path, content in sentinels.items():
        path.write_bytes(content)
    client = Registry(server.url, server.auth)
    # Give the server a real repository with a blob, a manifest and an upload in flight.
    config = os.urandom(30)
    layer = os.urandom(30)
    client.push_blob("real/repo", config)
    client.push_blob("real/repo", layer)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    client.push_manifest("real/repo", "latest", body, OCI_MANIFEST)
    yield client, server, sentinels
    client.close()
    for path in sentinels:
        path.unlink(missing_ok=True)


def snapshot(server: Any) -> set[Path]:
    """Everything outside the data directory that a stray write could create."""
    data_dir: Path = server.data_dir
    outside = set(data_dir.parent.iterdir()) | set(data_dir.parent.parent.iterdir())
    return {p for p in outside if p != data_dir and not p.name.endswith(".log")}


HOSTILE = [
    "/v2/../../../../etc/passwd",
    "/v2/..%2f..%2f..%2fsentinel/tags/list",
    "/v2/real/../../../sentinel/tags/list",
    "/v2/%2e%2e/%2e%2e/sentinel/tags/list",
    "/v2/%2e%2e%2f%2e%2e%2fsentinel/manifests/latest",
    "/v2/real/repo/../../../../sentinel/manifests/latest",
    "/v2/real/repo/manifests/..%2f..%2f..%2fsentinel",
    "/v2/real/repo/manifests/../../../../sentinel",
    "/v2/real/repo/manifests/%2e%2e",
    "/v2/real/repo/manifests/sha256:..%2f..%2f..%2fsentinel",
    "/v2/real/repo/blobs/sha256:..%2f..%2f..%2f..%2fsentinel",
    "/v2/real/repo/blobs/sha256:../../../../sentinel",
    "/v2/real/repo/blobs/..%2f..%2fsentinel",
    "/v2/real/repo/blobs/sha256%3a..%2f..%2fsentinel",
    "/v2/real/repo/blobs/uploads/..%2f..%2f..%2fsentinel",
    "/v2/real/repo/blobs/uploads/../../../sentinel",
    "/v2/real/repo/blobs/uploads/%2e%2e",
    "/v2/real/repo/blobs/uploads/..%5c..%5csentinel",
    "/v2/real/repo/blobs/uploads/%00",
    "/v2/real/repo/referrers/..%2f..%2fsentinel",
    "/v2/real/repo/referrers/sha256:..%2f..%2fsentinel",
    "/v2/real%2f..%2f..%2fsentinel/tags/list",
    "/v2/real/repo/tags/list?n=10&last=..%2f..%2f..%2fsentinel",
    "/v2/_catalog?last=..%2f..%2f..%2fsentinel",
    "/v2/real/repo/blobs/uploads/?mount=sha256:..%2f..%2fsentinel&from=..%2f..",
    "/v2/real/repo/blobs/uploads/?mount=" + digest_of(b"x") + "&from=..%2f..%2fsentinel",
]
METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_paths_never_escape_the_data_dir(
    sandbox: tuple[Registry, Any, dict[Path, bytes]], path: str
) -> None:
    api, server, sentinels = sandbox
    before = snapshot(server)
    listing_ok = "tags/list" in path.split("?")[0] or path.startswith("/v2/_catalog")
    for method in METHODS:
        body = b"" if method in ("GET", "HEAD", "DELETE") else b'{"schemaVersion":2}'
        resp = api.raw(method, path, body, {"Content-Type": "application/octet-stream"})
        what = f"{method} {path}"
        for content in sentinels.values():
            assert content[:40] not in resp.body, f"{what} leaked a file outside the store"
        if listing_ok and method in ("GET", "HEAD") and resp.status == 200:
            continue  # e.g. an odd `last=` is just a string to compare against
        if "?mount=" in path and method == "POST" and resp.status == 202:
            # "Unable to mount" may fall back to a plain upload session in this repository.
            location = resp.headers.get("location", "")
            assert httpx.URL(api.resolve(location)).path.startswith(
                "/v2/real/repo/blobs/uploads/"
            ), f"{what} -> 202 {location}"
            continue
        check_refused(resp, what)
    for sentinel, content in sentinels.items():
        assert sentinel.read_bytes() == content, f"{sentinel} was modified"
    assert snapshot(server) == before
    assert api.http.get("/v2/").status_code == 200
    assert api.get_manifest("real/repo", "latest").status_code == 200


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:../../../../sentinel",
        "sha256:..%2F..%2F..%2Fsentinel",
        "sha256:" + "a" * 64 + "/../../sentinel",
        "../../sentinel",
    ],
)
def test_hostile_digest_in_upload_put_is_refused(
    sandbox: tuple[Registry, Any, dict[Path, bytes]], digest: str
) -> None:
    api, server, sentinels = sandbox
    before = snapshot(server)
    location = api.resolve(api.upload_location("real/repo"))
    sep = "&" if "?" in location else "?"
    url = httpx.URL(location)
    target = url.raw_path.decode() + sep + "digest=" + digest
    resp = api.raw("PUT", target, b"payload", {"Content-Type": "application/octet-stream"})
    assert 400 <= resp.status < 500, f"PUT {target} -> {resp.status} {resp.body[:300]!r}"
    for sentinel, content in sentinels.items():
        assert sentinel.read_bytes() == content
    assert snapshot(server) == before


@pytest.mark.reference_deviation("2.8.2 answers 500 UNKNOWN for malformed descriptor digests")
def test_hostile_manifest_digests_in_descriptors_are_refused(
    sandbox: tuple[Registry, Any, dict[Path, bytes]],
) -> None:
    api, server, sentinels = sandbox
    before = snapshot(server)
    for digest in ("sha256:../../../sentinel", "../../sentinel", "sha256:" + "0" * 63 + "/"):
        body = image_manifest(
            {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 2},
            [],
        )
        resp = api.put_manifest("real/repo", "hostile", body, OCI_MANIFEST)
        assert resp.status_code == 400, describe(resp)
        assert resp.json()["errors"][0]["code"] in (
            "MANIFEST_INVALID",
            "DIGEST_INVALID",
            "MANIFEST_BLOB_UNKNOWN",
        ), describe(resp)
    for sentinel, content in sentinels.items():
        assert sentinel.read_bytes() == content
    assert snapshot(server) == before
