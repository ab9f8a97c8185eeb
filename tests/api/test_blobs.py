"""Blob HEAD/GET/Range/DELETE (distribution-spec: Pulling blobs, end-2; Deleting Blobs, end-10)."""

from __future__ import annotations

import hashlib
import os

import pytest
from apitest import IS_REFERENCE, Registry, assert_error, describe
from kit import digest_of, random_digest

#: Distribution 2.8.2 answers a 416 with the blob's Content-Length and a short body.
TRUNCATED_416 = pytest.mark.reference_deviation("416 keeps the blob Content-Length; truncated body")


def test_get_blob_returns_exact_bytes_and_headers(api: Registry, repo: str) -> None:
    data = os.urandom(4321)
    digest = api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data
    assert resp.headers["docker-content-digest"] == digest, describe(resp)
    assert resp.headers["content-length"] == str(len(data)), describe(resp)
    assert resp.headers["etag"] == f'"{digest}"', describe(resp)
    assert resp.headers["accept-ranges"] == "bytes", describe(resp)
    assert resp.headers["content-type"] == "application/octet-stream", describe(resp)


@pytest.mark.cargobay_only("blobs are served with X-Content-Type-Options: nosniff")
def test_get_blob_is_never_sniffed(api: Registry, repo: str) -> None:
    data = b"<html><script>alert(1)</script></html>" + os.urandom(8)
    digest = api.push_blob(repo, data)
    for method in ("GET", "HEAD"):
        resp = api.http.request(method, f"/v2/{repo}/blobs/{digest}")
        assert resp.status_code == 200, describe(resp)
        assert resp.headers.get("x-content-type-options") == "nosniff", describe(resp)
        assert resp.headers["content-type"] == "application/octet-stream", describe(resp)


def test_head_blob_has_headers_and_no_body(api: Registry, repo: str) -> None:
    data = os.urandom(2048)
    digest = api.push_blob(repo, data)
    resp = api.http.head(f"/v2/{repo}/blobs/{digest}")
    assert resp.status_code == 200, describe(resp)
    assert resp.content == b""
    assert resp.headers["content-length"] == str(len(data)), describe(resp)
    assert resp.headers["docker-content-digest"] == digest, describe(resp)
    assert resp.headers["etag"] == f'"{digest}"', describe(resp)
    assert resp.headers["accept-ranges"] == "bytes", describe(resp)
    assert resp.headers["content-type"] == "application/octet-stream", describe(resp)


def test_large_blob_round_trips(api: Registry, repo: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    digest = api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert hashlib.sha256(resp.content).hexdigest() == digest.split(":")[1]


def test_empty_blob_round_trips(api: Registry, repo: str) -> None:
    digest = api.push_blob(repo, b"")
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == b""
    assert resp.headers["content-length"] == "0", describe(resp)


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=1000-", 1000, 4095),
        ("bytes=-100", 3996, 4095),
        ("bytes=4000-999999", 4000, 4095),
        ("bytes=0-", 0, 4095),
        ("bytes=-5000", 0, 4095),
    ],
)
def test_range_request_returns_partial_content(
    api: Registry, repo: str, range_header: str, start: int, end: int
) -> None:
    data = os.urandom(4096)
    digest = api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": range_header})
    assert resp.status_code == 206, describe(resp)
    assert resp.headers["content-range"] == f"bytes {start}-{end}/4096", describe(resp)
    assert resp.content == data[start : end + 1]
    assert resp.headers["content-length"] == str(end - start + 1), describe(resp)


@TRUNCATED_416
def test_unsatisfiable_range_is_416(api: Registry, repo: str) -> None:
    data = os.urandom(1000)
    digest = api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=1000-"})
    assert resp.status_code == 416, describe(resp)
    assert resp.headers["content-range"] == "bytes */1000", describe(resp)
    if not IS_REFERENCE:
        assert_error(resp, 416, "RANGE_INVALID")


def test_if_none_match_with_current_etag_is_304(api: Registry, repo: str) -> None:
    data = os.urandom(300)
    digest = api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'})
    assert resp.status_code == 304, describe(resp)
    assert resp.content == b""
    other = api.http.get(f"/v2/{repo}/blobs/{digest}", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200, describe(other)
    assert other.content == data


def test_unknown_blob_is_404_blob_unknown(api: Registry, repo: str) -> None:
    api.push_blob(repo, os.urandom(10))  # the repository exists, the blob doesn't
    digest = random_digest()
    assert_error(api.http.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    head = api.http.head(f"/v2/{repo}/blobs/{digest}")
    assert_error(head, 404)
    assert head.content == b""


def test_blob_in_unknown_repository_is_404(api: Registry, repo: str) -> None:
    resp = api.http.get(f"/v2/{repo}/blobs/{random_digest()}")
    assert_error(resp, 404, "BLOB_UNKNOWN", "NAME_UNKNOWN")


def test_blob_is_only_visible_in_repositories_that_have_it(
    api: Registry, repo: str, other_repo: str
) -> None:
    data = os.urandom(700)
    digest = api.push_blob(repo, data)
    api.push_blob(other_repo, os.urandom(5))
    assert_error(api.http.get(f"/v2/{other_repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(api.http.head(f"/v2/{other_repo}/blobs/{digest}"), 404)


@pytest.mark.cargobay_only("reference: digests failing its route regex give a plain 404")
@pytest.mark.parametrize(
    "bad",
    [
        "sha256:abc",
        "sha256:" + "g" * 64,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256",
        "sha256:",
        ":" + "a" * 64,
        "not-a-digest",
    ],
)
def test_malformed_digest_is_400_digest_invalid(api: Registry, repo: str, bad: str) -> None:
    api.push_blob(repo, os.urandom(10))
    assert_error(api.http.get(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")
    assert_error(api.http.head(f"/v2/{repo}/blobs/{bad}"), 400)
    assert_error(api.http.delete(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")


@pytest.mark.cargobay_only("reference answers 404 for digests of unknown algorithms")
def test_unsupported_digest_algorithm_is_400(api: Registry, repo: str) -> None:
    api.push_blob(repo, os.urandom(10))
    md5 = "md5:" + hashlib.md5(b"x").hexdigest()
    assert_error(api.http.get(f"/v2/{repo}/blobs/{md5}"), 400, "DIGEST_INVALID", "UNSUPPORTED")


def test_get_blob_by_sha512_digest(api: Registry, repo: str) -> None:
    data = os.urandom(3000)
    digest = api.push_blob(repo, data, algorithm="sha512")
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data
    # The spec lets the header carry the registry's canonical digest; cargobay keeps sha512.
    expected = {digest, digest_of(data)} if IS_REFERENCE else {digest}
    assert resp.headers["docker-content-digest"] in expected, describe(resp)


def test_delete_blob_then_it_is_unknown_here_but_not_elsewhere(
    api: Registry, repo: str, other_repo: str
) -> None:
    data = os.urandom(1500)
    digest = api.push_blob(repo, data)
    assert api.push_blob(other_repo, data) == digest
    resp = api.http.delete(f"/v2/{repo}/blobs/{digest}")
    assert resp.status_code == 202, describe(resp)
    assert_error(api.http.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(api.http.head(f"/v2/{repo}/blobs/{digest}"), 404)
    still = api.http.get(f"/v2/{other_repo}/blobs/{digest}", follow_redirects=True)
    assert still.status_code == 200, describe(still)
    assert still.content == data


def test_delete_unknown_blob_is_404(api: Registry, repo: str) -> None:
    api.push_blob(repo, os.urandom(10))
    assert_error(api.http.delete(f"/v2/{repo}/blobs/{random_digest()}"), 404, "BLOB_UNKNOWN")


def test_deleted_blob_can_be_pushed_again(api: Registry, repo: str) -> None:
    data = os.urandom(800)
    digest = api.push_blob(repo, data)
    assert api.http.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert api.push_blob(repo, data) == digest
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data


@pytest.mark.parametrize(
    "range_header",
    [
        pytest.param("bytes=5-2", marks=TRUNCATED_416),
        pytest.param("items=0-1", marks=TRUNCATED_416),
        pytest.param("bytes=abc", marks=TRUNCATED_416),
        "bytes=",
        pytest.param("bytes=-", marks=TRUNCATED_416),
    ],
)
def test_malformed_range_is_ignored_or_refused(api: Registry, repo: str, range_header: str) -> None:
    data = os.urandom(100)
    digest = api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": range_header})
    assert resp.status_code in (200, 416), describe(resp)
    if resp.status_code == 200:
        assert resp.content == data


def test_pushing_an_existing_blob_again_is_fine(api: Registry, repo: str) -> None:
    data = os.urandom(600)
    assert api.push_blob(repo, data) == api.push_blob(repo, data)
    resp = api.http.get(f"/v2/{repo}/blobs/{digest_of(data)}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data
