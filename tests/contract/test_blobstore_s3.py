"""S3BlobStore beyond the shared contract, on a real S3 (the session's Ceph RGW): uploads that
span parts and replicas, big streams, ranges, digests, presigned URLs, copies, readiness."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kit import digest_of
from s3kit import MIB, keys, multipart_uploads, pattern
from test_blobstore import BIG, chunks, read_all, s3_store

from cargobay.errors import (
    DigestInvalid,
    Unavailable,
)
from cargobay.oci.digest import Digest
from cargobay.storage import s3_commit
from cargobay.storage.s3 import S3BlobStore
from cargobay.storage.s3_append import PART_SIZE
from cargobay.storage.s3_client import S3Calls, make_client
from cargobay.storage.s3_state import MIN_PART
from cargobay.storage.uploads import new_upload_id

pytestmark = pytest.mark.anyio


@pytest.fixture
def replicas(s3_service: Any, s3_bucket: str) -> tuple[S3BlobStore, S3BlobStore]:
    """Two stores on one bucket, each with its own client: two replicas of the registry."""
    return s3_store(s3_service, s3_bucket), s3_store(s3_service, s3_bucket)


@pytest.fixture
def store(replicas: tuple[S3BlobStore, S3BlobStore]) -> S3BlobStore:
    return replicas[0]


async def test_small_chunks_across_two_replicas_give_exact_bytes(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    data = os.urandom(20 * MIB + 123)
    upload = new_upload_id()
    await replicas[0].start_upload(upload)
    size = 0
    for i, start in enumerate(range(0, len(data), MIB)):
        part = data[start : start + MIB]
        replica = replicas[i % 2]
        size = await replica.append(
            upload, chunks(part), offset=size, max_size=BIG, length=len(part)
        )
        assert await replicas[(i + 1) % 2].upload_size(upload) == size
    assert size == len(data)
    assert await replicas[1].commit(upload, digest_of(data)) == len(data)
    assert await read_all(replicas[0], digest_of(data)) == data
    assert (
        await read_all(replicas[1], digest_of(data), 5 * MIB - 7, 3 * MIB)
        == data[5 * MIB - 7 : 8 * MIB - 7]
    )
    # Nothing of the session is left: no objects, no unfinished multipart upload.
    assert keys(replicas[0], "registry/uploads/") == []
    assert multipart_uploads(replicas[0]) == []


async def test_big_stream_is_uploaded_in_parts_and_reads_back(store: S3BlobStore) -> None:
    data = pattern(70 * MIB + 5)
    digest = digest_of(data)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    upload = new_upload_id()
    await store.start_upload(upload)
    assert await store.append(upload, stream(), offset=None, max_size=BIG) == len(data)
    state, _ = await store._load(upload)
    # Whole parts while streaming; the rest is a last part (>= 5 MiB) or the tail.
    full, rest = divmod(len(data), PART_SIZE)
    assert [size for _, size in state.parts] == [PART_SIZE] * full + [rest] * (rest >= MIN_PART)
    assert state.tail_size == (0 if rest >= MIN_PART else rest)
    assert await store.commit(upload, digest) == len(data)
    assert await store.stat(digest) == len(data)
    hasher = hashlib.sha256()
    async for chunk in store.read(digest):
        assert len(chunk) <= 1024 * 1024
        hasher.update(chunk)
    assert f"sha256:{hasher.hexdigest()}" == digest
    for offset, length in ((0, 1), (PART_SIZE - 3, 10), (len(data) - 9, 9), (MIB, 33 * MIB)):
        assert await read_all(store, digest, offset, length) == data[offset : offset + length]
    assert await read_all(store, digest, len(data) - 4) == data[-4:]


async def test_presigned_url_gives_exact_bytes_and_honours_range(
    store: S3BlobStore,
) -> None:
    data = pattern(6 * MIB + 1, seed=1)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(data), offset=0, max_size=BIG)
    digest = digest_of(data)
    await store.commit(upload, digest)
    url = await store.redirect_url(digest)
    assert url is not None and "X-Amz-Signature=" in url
    with httpx.Client(timeout=30) as http:
        whole = http.get(url)
        assert whole.status_code == 200
        assert whole.content == data
        part = http.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tampered = http.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
        assert tampered.status_code == 403
    store.redirect = False
    assert await store.redirect_url(digest) is None


@pytest.mark.parametrize("size", [100, 12 * MIB])
@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_wrong_digest_leaves_no_blob(store: S3BlobStore, size: int, algorithm: str) -> None:
    data = pattern(size, seed=2)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(data), offset=0, max_size=BIG)
    right = Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")
    wrong = Digest(f"{algorithm}:{hashlib.new(algorithm, b'other').hexdigest()}")
    with pytest.raises(DigestInvalid):
        await store.commit(upload, wrong)
    assert await store.stat(wrong) is None
    assert await store.stat(right) is None
    assert keys(store, "registry/blobs/") == []
    await store.abort(upload)
    assert keys(store) == []
    assert multipart_uploads(store) == []


async def test_sha512_over_parts_is_verified_by_reading_back(store: S3BlobStore) -> None:
    data = pattern(21 * MIB, seed=3)
    digest = Digest("sha512:" + hashlib.sha512(data).hexdigest())
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(data[:MIB], data[MIB:]), offset=None, max_size=BIG)
    assert await store.commit(upload, digest) == len(data)
    assert await read_all(store, digest) == data
    assert keys(store, "registry/uploads/") == []


async def test_copy_in_parts_above_the_copy_limit(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_commit, "COPY_LIMIT", 8 * MIB)
    monkeypatch.setattr(s3_commit, "COPY_PART", 5 * MIB)
    data = pattern(17 * MIB + 3, seed=8)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(data), offset=0, max_size=BIG)
    await store.commit(upload, digest_of(data))
    assert await read_all(store, digest_of(data)) == data
    assert multipart_uploads(store) == []


async def test_ready_and_unavailable_when_s3_is_unreachable(
    store: S3BlobStore, s3_service: Any
) -> None:
    await store.ready()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    client = make_client(
        endpoint_url=f"http://127.0.0.1:{closed}",
        region="us-east-1",
        access_key_id=s3_service.access_key,
        secret_access_key=s3_service.secret_key,
    )
    dead = S3BlobStore(S3Calls(client, "nowhere"))
    with pytest.raises(Unavailable):
        await dead.ready()
    with pytest.raises(Unavailable):  # what the registry answers with 503
        await dead.stat(digest_of(b"anything"))


async def test_copy_parts_keep_every_part_but_the_last_above_the_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3_commit, "COPY_PART", 8 * MIB)
    assert s3_commit.copy_parts([(0, 17 * MIB), (20 * MIB, 3)]) == [
        (0, 8 * MIB),
        (8 * MIB, 9 * MIB),  # 8 MiB + the 1 MiB end of the range
        (20 * MIB, 3),
    ]
    assert s3_commit.copy_parts([(0, 16 * MIB)]) == [(0, 8 * MIB), (8 * MIB, 8 * MIB)]


async def test_a_second_upload_of_a_stored_blob_is_discarded(store: S3BlobStore) -> None:
    data = pattern(12 * MIB, seed=18)
    for _ in range(2):
        upload = new_upload_id()
        await store.start_upload(upload)
        await store.append(upload, chunks(data), offset=0, max_size=BIG)
        assert await store.commit(upload, digest_of(data)) == len(data)
    assert [d async for d in store.iter_digests()] == [digest_of(data)]
    assert keys(store) == [f"registry/blobs/sha256/{digest_of(data).split(':')[1]}"]
    assert multipart_uploads(store) == []


async def test_upload_data_without_a_session_is_a_leftover_that_abort_removes(
    store: S3BlobStore,
) -> None:
    """A request that died before writing its session's state leaves a multipart upload and
    pieces no session names: listed as leftovers (with their age), removed by ``abort``."""
    orphan = new_upload_id()
    client = store.s3.client
    client.create_multipart_upload(Bucket=store.s3.bucket, Key=store.keys.data(orphan))
    client.put_object(Bucket=store.s3.bucket, Key=store.keys.segment(orphan, "x"), Body=b"abc")
    live = new_upload_id()
    await store.start_upload(live)
    leftovers = {u: at async for u, at in store.iter_upload_leftovers()}
    assert set(leftovers) == {orphan}
    assert abs(leftovers[orphan] - __import__("time").time()) < 300
    await store.abort(orphan)
    assert [u async for u, _ in store.iter_upload_leftovers()] == []
    assert multipart_uploads(store) == []
    assert keys(store, store.keys.uploads) == [store.keys.state(live)]
