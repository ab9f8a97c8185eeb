"""Blob uploads (distribution-spec: Pushing blobs, end-4a/4b/5/6/11/13/14)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from apitest import (
    IS_REFERENCE,
    MAX_BLOB,
    Registry,
    assert_error,
    describe,
    dir_bytes,
    paths_containing,
)
from kit import digest_of, random_digest


def assert_blob(api: Registry, repo: str, digest: str, data: bytes) -> None:
    resp = api.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data


def assert_created(
    api: Registry, resp: httpx.Response, repo: str, digest: str, canonical: str | None = None
) -> None:
    """201 with the blob's Location and digest. ``canonical``: another digest of the same bytes
    that the reference registry may answer with instead (the spec allows it; cargobay doesn't)."""
    assert resp.status_code == 201, describe(resp)
    digests = {digest, canonical} if IS_REFERENCE and canonical else {digest}
    location = api.path_of(resp.headers["location"])
    assert location in {f"/v2/{repo}/blobs/{d}" for d in digests}, describe(resp)
    assert resp.headers["docker-content-digest"] in digests, describe(resp)


def assert_upload_gone(api: Registry, location: str) -> None:
    assert_error(api.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")


def assert_failed_upload_gone(api: Registry, location: str) -> None:
    """cargobay ends an upload whose commit failed; the reference keeps it open."""
    if not IS_REFERENCE:
        assert_upload_gone(api, location)


def upload_uuid(resp: httpx.Response) -> str:
    return resp.headers["docker-upload-uuid"]


# -- starting an upload ----------------------------------------------------------------------


def test_post_starts_an_upload_session(api: Registry, repo: str) -> None:
    resp = api.start_upload(repo)
    uuid = resp.headers.get("docker-upload-uuid")
    assert uuid, describe(resp)
    path = api.path_of(resp.headers["location"])
    assert path == f"/v2/{repo}/blobs/uploads/{uuid}", describe(resp)
    assert resp.headers["range"] == "0-0", describe(resp)


def test_each_post_gets_a_new_session(api: Registry, repo: str) -> None:
    first = api.start_upload(repo)
    second = api.start_upload(repo)
    assert upload_uuid(first) != upload_uuid(second)


@pytest.mark.cargobay_only("single-POST upload is optional; reference 2.8.2 answers 202")
def test_monolithic_single_post(api: Registry, repo: str) -> None:
    data = os.urandom(3000)
    digest = digest_of(data)
    resp = api.http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_created(api, resp, repo, digest)
    assert_blob(api, repo, digest, data)


@pytest.mark.cargobay_only("single-POST upload is optional; reference 2.8.2 answers 202")
def test_monolithic_single_post_with_wrong_digest_stores_nothing(api: Registry, repo: str) -> None:
    data = os.urandom(3000)
    wrong = random_digest()
    resp = api.http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": wrong},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_error(resp, 400, "DIGEST_INVALID")
    assert not api.blob_exists(repo, wrong)
    assert not api.blob_exists(repo, digest_of(data))


def test_post_then_put(api: Registry, repo: str) -> None:
    data = os.urandom(5000)
    digest = digest_of(data)
    location = api.upload_location(repo)
    resp = api.request(
        "PUT",
        api.with_params(location, digest=digest),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_created(api, resp, repo, digest)
    assert_blob(api, repo, digest, data)
    assert_upload_gone(api, location)


def test_put_with_wrong_digest_is_400_and_stores_nothing(api: Registry, repo: str) -> None:
    data = os.urandom(5000)
    wrong = random_digest()
    location = api.upload_location(repo)
    resp = api.request("PUT", api.with_params(location, digest=wrong), content=data)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert not api.blob_exists(repo, wrong)
    assert not api.blob_exists(repo, digest_of(data))
    assert_failed_upload_gone(api, location)


def test_put_without_digest_is_400(api: Registry, repo: str) -> None:
    data = os.urandom(100)
    location = api.upload_location(repo)
    resp = api.request("PUT", location, content=data)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert not api.blob_exists(repo, digest_of(data))


# -- streamed and chunked PATCH ----------------------------------------------------------------


def patch(api: Registry, location: str, chunk: bytes, start: int | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(chunk) - 1}"
    return api.request("PATCH", location, content=chunk, headers=headers)


def assert_progress(api: Registry, resp: httpx.Response, repo: str, uuid: str, size: int) -> None:
    assert resp.status_code == 202, describe(resp)
    assert api.path_of(resp.headers["location"]) == f"/v2/{repo}/blobs/uploads/{uuid}", describe(
        resp
    )
    assert resp.headers["range"] == f"0-{size - 1}", describe(resp)
    assert resp.headers["docker-upload-uuid"] == uuid, describe(resp)


def test_streamed_patch_then_put(api: Registry, repo: str) -> None:
    data = os.urandom(300_000)
    start = api.start_upload(repo)
    uuid = upload_uuid(start)
    resp = patch(api, start.headers["location"], data)
    assert_progress(api, resp, repo, uuid, len(data))
    digest = digest_of(data)
    done = api.request("PUT", api.with_params(resp.headers["location"], digest=digest))
    assert_created(api, done, repo, digest)
    assert_blob(api, repo, digest, data)


def test_streamed_patch_with_chunked_transfer_encoding(api: Registry, repo: str) -> None:
    parts = [os.urandom(64 * 1024) for _ in range(5)]

    def body() -> Iterator[bytes]:
        yield from parts

    start = api.start_upload(repo)
    resp = api.request(
        "PATCH",
        start.headers["location"],
        content=body(),
        headers={"Content-Type": "application/octet-stream"},
    )
    data = b"".join(parts)
    assert_progress(api, resp, repo, upload_uuid(start), len(data))
    digest = digest_of(data)
    done = api.request("PUT", api.with_params(resp.headers["location"], digest=digest))
    assert_created(api, done, repo, digest)
    assert_blob(api, repo, digest, data)


def test_several_streamed_patches_append(api: Registry, repo: str) -> None:
    parts = [os.urandom(1000), os.urandom(1), os.urandom(2500)]
    start = api.start_upload(repo)
    location = start.headers["location"]
    size = 0
    for part in parts:
        resp = patch(api, location, part)
        size += len(part)
        assert_progress(api, resp, repo, upload_uuid(start), size)
        location = resp.headers["location"]
    data = b"".join(parts)
    done = api.request("PUT", api.with_params(location, digest=digest_of(data)))
    assert_created(api, done, repo, digest_of(data))
    assert_blob(api, repo, digest_of(data), data)


def test_chunked_upload_with_content_range_and_last_chunk_in_put(api: Registry, repo: str) -> None:
    data = os.urandom(10_000)
    chunks = [data[:4000], data[4000:8000]]
    start = api.start_upload(repo)
    uuid = upload_uuid(start)
    location = start.headers["location"]
    offset = 0
    for chunk in chunks:
        resp = patch(api, location, chunk, start=offset)
        offset += len(chunk)
        assert_progress(api, resp, repo, uuid, offset)
        location = resp.headers["location"]
    digest = digest_of(data)
    last = data[8000:]
    done = api.request(
        "PUT",
        api.with_params(location, digest=digest),
        content=last,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"8000-{len(data) - 1}",
        },
    )
    assert_created(api, done, repo, digest)
    assert_blob(api, repo, digest, data)


def test_chunked_upload_all_chunks_by_patch(api: Registry, repo: str) -> None:
    data = os.urandom(9_001)
    start = api.start_upload(repo)
    location = start.headers["location"]
    for offset in range(0, len(data), 3000):
        resp = patch(api, location, data[offset : offset + 3000], start=offset)
        assert_progress(api, resp, repo, upload_uuid(start), min(offset + 3000, len(data)))
        location = resp.headers["location"]
    digest = digest_of(data)
    done = api.request("PUT", api.with_params(location, digest=digest))
    assert_created(api, done, repo, digest)
    assert_blob(api, repo, digest, data)


def test_upload_status(api: Registry, repo: str) -> None:
    start = api.start_upload(repo)
    uuid = upload_uuid(start)
    resp = patch(api, start.headers["location"], os.urandom(1234), start=0)
    assert resp.status_code == 202, describe(resp)
    status = api.request("GET", resp.headers["location"])
    assert status.status_code == 204, describe(status)
    assert status.content == b""
    assert status.headers["range"] == "0-1233", describe(status)
    assert status.headers["docker-upload-uuid"] == uuid, describe(status)
    location = status.headers["location"]
    assert api.path_of(location) == f"/v2/{repo}/blobs/uploads/{uuid}", describe(status)


@pytest.mark.reference_deviation("2.8.2 accepts out-of-order chunks with 202 and appends them")
@pytest.mark.parametrize("start_at", [0, 500, 2001, 5000], ids=["repeat", "overlap", "gap", "far"])
def test_out_of_order_chunk_is_416_and_appends_nothing(
    api: Registry, repo: str, start_at: int
) -> None:
    first = os.urandom(2000)
    start = api.start_upload(repo)
    resp = patch(api, start.headers["location"], first, start=0)
    assert resp.status_code == 202, describe(resp)
    location = resp.headers["location"]
    bad = patch(api, location, os.urandom(700), start=start_at)
    assert_error(bad, 416)
    assert bad.headers.get("range") == "0-1999", describe(bad)
    status = api.request("GET", location)
    assert status.status_code == 204, describe(status)
    assert status.headers["range"] == "0-1999", describe(status)
    # The upload continues where it was and completes with the right bytes.
    second = os.urandom(100)
    resp = patch(api, status.headers["location"], second, start=2000)
    assert resp.status_code == 202, describe(resp)
    data = first + second
    done = api.request("PUT", api.with_params(resp.headers["location"], digest=digest_of(data)))
    assert_created(api, done, repo, digest_of(data))
    assert_blob(api, repo, digest_of(data), data)


def test_chunked_put_with_wrong_digest_discards_the_upload(api: Registry, repo: str) -> None:
    data = os.urandom(3000)
    start = api.start_upload(repo)
    resp = patch(api, start.headers["location"], data, start=0)
    location = resp.headers["location"]
    wrong = random_digest()
    bad = api.request("PUT", api.with_params(location, digest=wrong))
    assert_error(bad, 400, "DIGEST_INVALID")
    assert not api.blob_exists(repo, wrong)
    assert not api.blob_exists(repo, digest_of(data))
    assert_failed_upload_gone(api, location)


@pytest.mark.reference_deviation("2.8.2 ignores the end of Content-Range and appends")
@pytest.mark.parametrize("declared", [50, 150], ids=["shorter", "longer"])
def test_chunk_whose_range_does_not_match_its_length_appends_nothing(
    api: Registry, repo: str, declared: int
) -> None:
    first = os.urandom(100)
    start = api.start_upload(repo)
    resp = patch(api, start.headers["location"], first, start=0)
    assert resp.status_code == 202, describe(resp)
    location = resp.headers["location"]
    bad = api.request(
        "PATCH",
        location,
        content=os.urandom(100),
        headers={"Content-Range": f"100-{100 + declared - 1}"},
    )
    assert bad.status_code in (400, 416), describe(bad)
    status = api.request("GET", location)
    assert status.status_code == 204, describe(status)
    assert status.headers["range"] == "0-99", describe(status)


def test_parallel_uploads_to_one_repository(api: Registry, repo: str) -> None:
    blobs = [os.urandom(50_000 + i) for i in range(8)]

    def push(data: bytes) -> str:
        client = Registry(api.base_url, api.auth)
        try:
            start = client.start_upload(repo)
            half = len(data) // 2
            resp = patch(client, start.headers["location"], data[:half], start=0)
            assert resp.status_code == 202, describe(resp)
            resp = patch(client, resp.headers["location"], data[half:], start=half)
            assert resp.status_code == 202, describe(resp)
            done = client.request(
                "PUT", client.with_params(resp.headers["location"], digest=digest_of(data))
            )
            assert done.status_code == 201, describe(done)
            return digest_of(data)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(push, blobs))
    for digest, data in zip(digests, blobs, strict=True):
        assert_blob(api, repo, digest, data)


def test_same_blob_uploaded_concurrently(api: Registry, repo: str) -> None:
    data = os.urandom(200_000)
    digest = digest_of(data)
    locations = [api.upload_location(repo) for _ in range(4)]

    def finish(location: str) -> int:
        client = Registry(api.base_url, api.auth)
        try:
            url = client.with_params(location, digest=digest)
            return client.request("PUT", url, content=data).status_code
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(finish, locations))
    assert statuses == [201] * 4
    assert_blob(api, repo, digest, data)


# -- cancel and unknown uploads ----------------------------------------------------------------


def test_cancel_upload(api: Registry, repo: str) -> None:
    data = os.urandom(1000)
    start = api.start_upload(repo)
    resp = patch(api, start.headers["location"], data)
    location = resp.headers["location"]
    cancel = api.request("DELETE", location)
    assert cancel.status_code == 204, describe(cancel)
    assert_error(api.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(api, location, os.urandom(10)), 404, "BLOB_UPLOAD_UNKNOWN")
    put = api.request("PUT", api.with_params(location, digest=digest_of(data)))
    assert_error(put, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not api.blob_exists(repo, digest_of(data))
    assert_error(api.request("DELETE", location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.cargobay_only("reference keeps upload state in the URL; it rejects it otherwise")
def test_upload_id_under_another_repository_is_unknown(
    api: Registry, repo: str, other_repo: str
) -> None:
    api.push_blob(other_repo, os.urandom(10))
    start = api.start_upload(repo)
    uuid = upload_uuid(start)
    foreign = f"/v2/{other_repo}/blobs/uploads/{uuid}"
    data = os.urandom(100)
    assert_error(api.http.get(foreign), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(api, foreign, data), 404, "BLOB_UPLOAD_UNKNOWN")
    put = api.http.put(foreign, params={"digest": digest_of(data)}, content=data)
    assert_error(put, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(api.http.delete(foreign), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not api.blob_exists(other_repo, digest_of(data))
    # The session is untouched under its own repository.
    status = api.request("GET", start.headers["location"])
    assert status.status_code == 204, describe(status)


def test_upload_location_under_another_repository_is_refused(
    api: Registry, repo: str, other_repo: str
) -> None:
    """Same as above, keeping whatever query the registry put in the Location."""
    api.push_blob(other_repo, os.urandom(10))
    location = api.resolve(api.upload_location(repo))
    foreign = location.replace(f"/v2/{repo}/", f"/v2/{other_repo}/")
    data = os.urandom(100)
    resp = api.request("PUT", api.with_params(foreign, digest=digest_of(data)), content=data)
    assert 400 <= resp.status_code < 500, describe(resp)
    assert not api.blob_exists(other_repo, digest_of(data))


@pytest.mark.cargobay_only("reference routes upload ids by regex, answers 404 without a body")
@pytest.mark.parametrize(
    "upload_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "x" * 300, "a.b"]
)
def test_malformed_or_unknown_upload_id_is_404(api: Registry, repo: str, upload_id: str) -> None:
    api.push_blob(repo, os.urandom(10))
    url = f"/v2/{repo}/blobs/uploads/{upload_id}"
    assert_error(api.http.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(api.http.patch(url, content=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        api.http.put(url, params={"digest": digest_of(b"abc")}, content=b"abc"),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    assert_error(api.http.delete(url), 404, "BLOB_UPLOAD_UNKNOWN")


# -- cross-repository mount --------------------------------------------------------------------


def test_mount_from_repository_that_has_the_blob(api: Registry, repo: str, other_repo: str) -> None:
    data = os.urandom(2000)
    digest = api.push_blob(other_repo, data)
    assert not api.blob_exists(repo, digest)
    resp = api.http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": other_repo})
    assert_created(api, resp, repo, digest)
    assert_blob(api, repo, digest, data)


@pytest.mark.parametrize("source", ["lacks-blob", "missing-repo"])
def test_mount_falls_back_to_an_upload_session(
    api: Registry, repo: str, other_repo: str, source: str
) -> None:
    data = os.urandom(2000)
    digest = digest_of(data)
    if source == "lacks-blob":
        api.push_blob(other_repo, os.urandom(10))
    resp = api.http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": other_repo})
    assert resp.status_code == 202, describe(resp)
    uuid = resp.headers["docker-upload-uuid"]
    assert api.path_of(resp.headers["location"]) == f"/v2/{repo}/blobs/uploads/{uuid}"
    assert not api.blob_exists(repo, digest)
    done = api.request(
        "PUT", api.with_params(resp.headers["location"], digest=digest), content=data
    )
    assert_created(api, done, repo, digest)
    assert_blob(api, repo, digest, data)


def test_mount_does_not_leak_blobs_from_unrelated_repositories(
    api: Registry, repo: str, other_repo: str
) -> None:
    """A blob held by repository X is not mounted when ``from`` names a repository without it."""
    data = os.urandom(2000)
    digest = api.push_blob(other_repo, data)
    third = other_repo + "-third"
    api.push_blob(third, os.urandom(10))
    resp = api.http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": third})
    assert resp.status_code == 202, describe(resp)
    assert not api.blob_exists(repo, digest)


@pytest.mark.parametrize("where", ["readable-repository", "this-repository", "nowhere"])
def test_mount_without_from_starts_an_upload_session(
    api: Registry, repo: str, other_repo: str, where: str
) -> None:
    """spec.md "Mounting a blob from another repository": without ``from`` a registry may look
    for the blob itself, or start an upload session. cargobay always starts one (202), so the
    answer never depends on where else the blob exists; the session then works as usual."""
    data = os.urandom(1500)
    digest = digest_of(data)
    if where == "readable-repository":
        api.push_blob(other_repo, data)
    elif where == "this-repository":
        api.push_blob(repo, data)
    resp = api.http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest})
    assert resp.status_code == 202, describe(resp)
    uuid = resp.headers["docker-upload-uuid"]
    assert api.path_of(resp.headers["location"]) == f"/v2/{repo}/blobs/uploads/{uuid}"
    assert api.blob_exists(repo, digest) == (where == "this-repository")
    done = api.request(
        "PUT", api.with_params(resp.headers["location"], digest=digest), content=data
    )
    assert_created(api, done, repo, digest)
    assert_blob(api, repo, digest, data)


# -- sha512 ------------------------------------------------------------------------------------


def test_sha512_upload(api: Registry, repo: str) -> None:
    data = os.urandom(4000)
    digest = digest_of(data, "sha512")
    location = api.upload_location(repo)
    resp = api.request("PUT", api.with_params(location, digest=digest), content=data)
    assert_created(api, resp, repo, digest, canonical=digest_of(data))
    assert_blob(api, repo, digest, data)


def test_sha512_chunked_upload_with_wrong_digest(api: Registry, repo: str) -> None:
    data = os.urandom(4000)
    start = api.start_upload(repo)
    resp = patch(api, start.headers["location"], data, start=0)
    wrong = digest_of(os.urandom(10), "sha512")
    bad = api.request("PUT", api.with_params(resp.headers["location"], digest=wrong))
    assert_error(bad, 400, "DIGEST_INVALID")
    assert not api.blob_exists(repo, wrong)


# -- limits (cargobay settings) ------------------------------------------------------------------


@pytest.mark.cargobay_only("max_blob_size setting")
class TestBlobSizeLimit:
    def test_blob_of_exactly_the_limit_is_accepted(
        self, limited: tuple[Registry, Any], repo: str
    ) -> None:
        api, _ = limited
        data = os.urandom(MAX_BLOB)
        digest = api.push_blob(repo, data)
        assert_blob(api, repo, digest, data)

    def test_monolithic_post_over_the_limit(self, limited: tuple[Registry, Any], repo: str) -> None:
        api, server = limited
        uploads = server.data_dir / "uploads"
        before = dir_bytes(uploads)
        data = os.urandom(MAX_BLOB + 1)
        resp = api.http.post(
            f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(data)}, content=data
        )
        assert_error(resp, 413, "SIZE_INVALID")
        assert not api.blob_exists(repo, digest_of(data))
        assert dir_bytes(uploads) == before

    def test_put_over_the_limit(self, limited: tuple[Registry, Any], repo: str) -> None:
        api, server = limited
        uploads = server.data_dir / "uploads"
        before = dir_bytes(uploads)
        start = api.start_upload(repo)
        location = start.headers["location"]
        data = os.urandom(MAX_BLOB + 1)
        resp = api.request("PUT", api.with_params(location, digest=digest_of(data)), content=data)
        assert_error(resp, 413, "SIZE_INVALID")
        assert_upload_gone(api, location)
        assert not api.blob_exists(repo, digest_of(data))
        assert paths_containing(uploads, upload_uuid(start)) == []
        assert dir_bytes(uploads) == before

    def test_streamed_patch_over_the_limit(self, limited: tuple[Registry, Any], repo: str) -> None:
        api, server = limited
        uploads = server.data_dir / "uploads"
        before = dir_bytes(uploads)
        start = api.start_upload(repo)
        location = start.headers["location"]

        def body() -> Iterator[bytes]:
            for _ in range(5):
                yield os.urandom(256 * 1024)

        resp = api.request("PATCH", location, content=body())
        assert_error(resp, 413, "SIZE_INVALID")
        assert_upload_gone(api, location)
        assert paths_containing(uploads, upload_uuid(start)) == []
        assert dir_bytes(uploads) == before

    def test_chunk_that_crosses_the_limit(self, limited: tuple[Registry, Any], repo: str) -> None:
        api, server = limited
        uploads = server.data_dir / "uploads"
        before = dir_bytes(uploads)
        start = api.start_upload(repo)
        first = patch(api, start.headers["location"], os.urandom(MAX_BLOB - 10), start=0)
        assert first.status_code == 202, describe(first)
        location = first.headers["location"]
        resp = patch(api, location, os.urandom(11), start=MAX_BLOB - 10)
        assert_error(resp, 413, "SIZE_INVALID")
        assert_upload_gone(api, location)
        assert paths_containing(uploads, upload_uuid(start)) == []
        assert dir_bytes(uploads) == before

    def test_last_chunk_in_put_that_crosses_the_limit(
        self, limited: tuple[Registry, Any], repo: str
    ) -> None:
        api, server = limited
        uploads = server.data_dir / "uploads"
        before = dir_bytes(uploads)
        start = api.start_upload(repo)
        head = os.urandom(MAX_BLOB)
        first = patch(api, start.headers["location"], head, start=0)
        assert first.status_code == 202, describe(first)
        location = first.headers["location"]
        tail = os.urandom(1)
        resp = api.request(
            "PUT", api.with_params(location, digest=digest_of(head + tail)), content=tail
        )
        assert_error(resp, 413, "SIZE_INVALID")
        assert_upload_gone(api, location)
        assert not api.blob_exists(repo, digest_of(head + tail))
        assert paths_containing(uploads, upload_uuid(start)) == []
        assert dir_bytes(uploads) == before


@pytest.mark.cargobay_only("upload_timeout / upload_sweep_interval settings")
def test_idle_upload_expires_and_its_data_is_removed(server_factory: Any, repo: str) -> None:
    server = server_factory(upload_timeout=1, upload_sweep_interval=0.5)
    api = Registry(server.url, server.auth)
    try:
        uploads = server.data_dir / "uploads"
        start = api.start_upload(repo)
        uuid = upload_uuid(start)
        resp = patch(api, start.headers["location"], os.urandom(10_000), start=0)
        assert resp.status_code == 202, describe(resp)
        assert dir_bytes(uploads) >= 10_000, f"no upload data under {uploads}"
        # Only watch the disk while waiting: touching the upload could keep it alive.
        deadline = time.monotonic() + 8
        while dir_bytes(uploads) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert_upload_gone(api, start.headers["location"])
        assert paths_containing(uploads, uuid) == []
        assert dir_bytes(uploads) == 0
        # A fresh upload on the same server still works.
        data = os.urandom(100)
        digest = api.push_blob(repo, data)
        assert_blob(api, repo, digest, data)
    finally:
        api.close()
