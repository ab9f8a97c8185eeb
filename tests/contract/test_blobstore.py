"""The BlobStore contract: every backend behaves the same (see storage/base.py)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import digest_of

from cargobay.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    SizeInvalid,
    TooLarge,
    UploadOffsetMismatch,
)
from cargobay.oci.digest import Digest
from cargobay.storage.base import BlobStore
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.memory import MemoryBlobStore
from cargobay.storage.s3 import S3BlobStore
from cargobay.storage.s3_client import S3Calls
from cargobay.storage.uploads import new_upload_id

pytestmark = pytest.mark.anyio

BIG = 10 * 1024**3


@pytest.fixture(params=["filesystem", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path)
    elif request.param == "memory":
        yield MemoryBlobStore()
    else:
        # A fresh bucket on the session's S3 (a Ceph RGW), with a key prefix.
        service = request.getfixturevalue("s3_service")
        yield s3_store(service, request.getfixturevalue("s3_bucket"))


def s3_store(service: Any, bucket: str, prefix: str = "registry/") -> S3BlobStore:
    """An S3BlobStore on ``bucket`` (created if missing): one replica's view of the bucket."""
    calls = S3Calls(service.client(), bucket)
    calls.ensure_bucket("us-east-1")
    return S3BlobStore(calls, prefix=prefix, presign_expiry=60)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(
    store: BlobStore, digest: Digest, offset: int = 0, length: int | None = None
) -> bytes:
    return b"".join([c async for c in store.read(digest, offset, length)])


async def put(store: BlobStore, data: bytes) -> Digest:
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(data), offset=0, max_size=BIG)
    digest = digest_of(data)
    await store.commit(upload, digest)
    return digest


async def test_committed_blob_reads_back_whole_and_in_ranges(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = await put(store, data)
    assert await store.stat(digest) == len(data)
    assert await read_all(store, digest) == data
    assert await read_all(store, digest, 5, 1000) == data[5:1005]
    assert await read_all(store, digest, len(data) - 3) == data[-3:]


async def test_unknown_blob(store: BlobStore) -> None:
    digest = digest_of(b"never stored")
    assert await store.stat(digest) is None
    with pytest.raises(BlobUnknown):
        await read_all(store, digest)
    assert await store.delete(digest) is False


async def test_chunked_upload_in_order_and_resumed(store: BlobStore) -> None:
    parts = [os.urandom(n) for n in (1, 700_000, 1_500_000, 3)]
    upload = new_upload_id()
    await store.start_upload(upload)
    size = 0
    for part in parts:
        size = await store.append(upload, chunks(part), offset=size, max_size=BIG, length=len(part))
        assert await store.upload_size(upload) == size
    data = b"".join(parts)
    assert await store.commit(upload, digest_of(data)) == len(data)
    assert await read_all(store, digest_of(data)) == data
    with pytest.raises(BlobUploadUnknown):
        await store.upload_size(upload)


async def test_out_of_order_chunk_is_refused_and_changes_nothing(store: BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(b"abc"), offset=0, max_size=BIG)
    for offset in (0, 2, 4):
        with pytest.raises(UploadOffsetMismatch) as info:
            await store.append(upload, chunks(b"zzz"), offset=offset, max_size=BIG)
        assert info.value.size == 3
    assert await store.upload_size(upload) == 3
    await store.append(upload, chunks(b"def"), offset=None, max_size=BIG)
    await store.commit(upload, digest_of(b"abcdef"))
    assert await read_all(store, digest_of(b"abcdef")) == b"abcdef"


async def test_wrong_digest_stores_nothing(store: BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(b"payload"), offset=0, max_size=BIG)
    wrong = digest_of(b"something else")
    with pytest.raises(DigestInvalid):
        await store.commit(upload, wrong)
    assert await store.stat(wrong) is None
    assert await store.stat(digest_of(b"payload")) is None
    await store.abort(upload)
    await store.abort(upload)  # idempotent
    with pytest.raises(BlobUploadUnknown):
        await store.upload_size(upload)


async def test_sha512_digest(store: BlobStore) -> None:
    data = os.urandom(100_000)
    digest = Digest("sha512:" + hashlib.sha512(data).hexdigest())
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(data[:10], data[10:]), offset=None, max_size=BIG)
    await store.commit(upload, digest)
    assert await read_all(store, digest) == data


async def test_size_limit_discards_what_the_call_wrote(store: BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(b"12345"), offset=0, max_size=10)
    with pytest.raises(TooLarge):
        await store.append(upload, chunks(b"678", b"901"), offset=5, max_size=10)
    assert await store.upload_size(upload) == 5
    with pytest.raises(TooLarge):
        await store.append(upload, chunks(b"x"), offset=5, max_size=10, length=6)
    assert await store.upload_size(upload) == 5


async def test_length_mismatch_is_undone(store: BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)
    with pytest.raises(SizeInvalid):
        await store.append(upload, chunks(b"abc"), offset=0, max_size=BIG, length=4)
    assert await store.upload_size(upload) == 0
    await store.append(upload, chunks(b"abcd"), offset=0, max_size=BIG, length=4)
    await store.commit(upload, digest_of(b"abcd"))
    assert await read_all(store, digest_of(b"abcd")) == b"abcd"


async def test_interrupted_stream_keeps_the_received_prefix(store: BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)

    async def broken() -> AsyncIterator[bytes]:
        yield b"first-"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.append(upload, broken(), offset=None, max_size=BIG)
    assert await store.upload_size(upload) == len(b"first-")
    await store.append(upload, chunks(b"second"), offset=6, max_size=BIG)
    await store.commit(upload, digest_of(b"first-second"))
    assert await read_all(store, digest_of(b"first-second")) == b"first-second"


async def test_concurrent_writer_is_refused(store: BlobStore) -> None:
    if isinstance(store, S3BlobStore):
        pytest.skip(
            "S3 has no locks: a concurrent writer is refused when it saves, not when it starts "
            "(test_blobstore_s3_failures.py checks that the loser of the race is refused)"
        )
    upload = new_upload_id()
    await store.start_upload(upload)

    async def nested() -> AsyncIterator[bytes]:
        yield b"a"
        with pytest.raises(BlobUploadInvalid):
            await store.append(upload, chunks(b"b"), offset=None, max_size=BIG)
        yield b"c"

    await store.append(upload, nested(), offset=None, max_size=BIG)
    await store.commit(upload, digest_of(b"ac"))


async def test_committing_an_existing_blob_keeps_one_copy(store: BlobStore) -> None:
    digest = await put(store, b"same bytes")
    assert await put(store, b"same bytes") == digest
    assert [d async for d in store.iter_digests()] == [digest]
    assert await store.delete(digest) is True
    assert await store.stat(digest) is None


async def test_unknown_and_malformed_upload_ids(store: BlobStore) -> None:
    for upload in (new_upload_id(), "../../etc", "A" * 32, ""):
        with pytest.raises(BlobUploadUnknown):
            await store.upload_size(upload)
        with pytest.raises(BlobUploadUnknown):
            await store.append(upload, chunks(b"x"), offset=None, max_size=BIG)
        with pytest.raises(BlobUploadUnknown):
            await store.commit(upload, digest_of(b"x"))


async def test_uploads_are_listed_until_finished(store: BlobStore) -> None:
    first, second = new_upload_id(), new_upload_id()
    await store.start_upload(first)
    await store.start_upload(second)
    assert {u async for u, _ in store.iter_uploads()} == {first, second}
    await store.abort(first)
    assert [u async for u, _ in store.iter_uploads()] == [second]


async def test_empty_blob(store: BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.commit(upload, digest_of(b""))
    assert await store.stat(digest_of(b"")) == 0
    assert await read_all(store, digest_of(b"")) == b""


async def test_listing_blobs_gives_size_and_write_time(store: BlobStore) -> None:
    """What the garbage collector compares with the metadata: every blob, its size, its age."""
    import time

    before = time.time() - 5
    small, large = b"tiny", os.urandom(1_200_000)
    digests = {await put(store, small): len(small), await put(store, large): len(large)}
    listed = {blob.digest: blob async for blob in store.iter_blobs()}
    assert {d: listed[d].size for d in digests} == digests
    assert all(before <= listed[d].modified <= time.time() + 5 for d in digests)
    for digest in digests:
        assert await store.delete(digest) is True
    assert not {blob.digest async for blob in store.iter_blobs()} & set(digests)


async def test_sessions_are_not_leftovers_and_abort_removes_them(store: BlobStore) -> None:
    """Live upload sessions are listed by iter_uploads, never as leftovers; after an abort
    neither lists anything of them."""
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(b"x" * 1000), offset=0, max_size=BIG)
    assert upload in {u async for u, _ in store.iter_uploads()}
    assert upload not in {u async for u, _ in store.iter_upload_leftovers()}
    await store.abort(upload)
    assert upload not in {u async for u, _ in store.iter_uploads()}
    assert upload not in {u async for u, _ in store.iter_upload_leftovers()}
