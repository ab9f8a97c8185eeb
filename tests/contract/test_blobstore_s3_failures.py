"""S3BlobStore when requests fail: interrupted streams, size errors, races between requests,
replicas dying mid-stream, stray parts, clean-up. On a real S3 (the session's Ceph RGW)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from kit import digest_of
from s3kit import MIB, keys, multipart_uploads, pattern
from test_blobstore import BIG, chunks, read_all, s3_store

from cargobay.errors import (
    BlobUploadInvalid,
    DigestInvalid,
    SizeInvalid,
    TooLarge,
)
from cargobay.oci.digest import Digest
from cargobay.storage import s3_append, s3_commit
from cargobay.storage.s3 import S3BlobStore
from cargobay.storage.s3_append import PART_SIZE
from cargobay.storage.uploads import new_upload_id

pytestmark = pytest.mark.anyio


@pytest.fixture
def replicas(s3_service: Any, s3_bucket: str) -> tuple[S3BlobStore, S3BlobStore]:
    """Two stores on one bucket, each with its own client: two replicas of the registry."""
    return s3_store(s3_service, s3_bucket), s3_store(s3_service, s3_bucket)


@pytest.fixture
def store(replicas: tuple[S3BlobStore, S3BlobStore]) -> S3BlobStore:
    return replicas[0]


async def test_interrupted_stream_keeps_parts_and_tail_for_another_replica(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    data = pattern(40 * MIB + 11, seed=4)
    cut = 19 * MIB + 5

    async def broken() -> AsyncIterator[bytes]:
        for start in range(0, cut, 512 * 1024):
            yield data[start : min(start + 512 * 1024, cut)]
        raise ConnectionResetError("client went away")

    upload = new_upload_id()
    await replicas[0].start_upload(upload)
    with pytest.raises(ConnectionResetError):
        await replicas[0].append(upload, broken(), offset=None, max_size=BIG)
    assert await replicas[1].upload_size(upload) == cut
    await replicas[1].append(upload, chunks(data[cut:]), offset=cut, max_size=BIG)
    await replicas[1].commit(upload, digest_of(data))
    assert await read_all(replicas[0], digest_of(data)) == data


async def test_failed_appends_keep_the_state_from_before(store: S3BlobStore) -> None:
    first = pattern(7 * MIB, seed=5)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(first), offset=0, max_size=60 * MIB)
    before = keys(store, "registry/uploads/")
    big = pattern(40 * MIB, seed=6)
    with pytest.raises(SizeInvalid):
        await store.append(upload, chunks(big), offset=len(first), max_size=BIG, length=1)
    with pytest.raises(TooLarge):
        await store.append(upload, chunks(big, big), offset=len(first), max_size=60 * MIB)
    assert await store.upload_size(upload) == len(first)
    assert keys(store, "registry/uploads/") == before  # no tail segment of theirs is left
    rest = pattern(3 * MIB, seed=7)
    await store.append(upload, chunks(rest), offset=len(first), max_size=60 * MIB)
    await store.commit(upload, digest_of(first + rest))
    assert await read_all(store, digest_of(first + rest)) == first + rest


async def test_loser_of_a_concurrent_append_is_refused(store: S3BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)

    async def slow() -> AsyncIterator[bytes]:
        yield b"a"
        # Another request appends and saves while this one is still receiving.
        await store.append(upload, chunks(b"b"), offset=None, max_size=BIG)
        yield b"c"

    with pytest.raises(BlobUploadInvalid):
        await store.append(upload, slow(), offset=None, max_size=BIG)
    assert await store.upload_size(upload) == 1
    await store.commit(upload, digest_of(b"b"))
    assert await read_all(store, digest_of(b"b")) == b"b"


async def test_abort_removes_parts_tail_and_state(store: S3BlobStore) -> None:
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(pattern(18 * MIB, seed=9)), offset=0, max_size=BIG)
    assert multipart_uploads(store) != []
    assert [u async for u, _ in store.iter_uploads()] == [upload]
    await store.abort(upload)
    await store.abort(upload)
    assert keys(store) == []
    assert multipart_uploads(store) == []
    assert [u async for u, _ in store.iter_uploads()] == []


async def test_checkpoints_survive_a_replica_dying_mid_stream(
    replicas: tuple[S3BlobStore, S3BlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_append, "CHECKPOINT_INTERVAL", 0.0)
    data = pattern(3 * PART_SIZE + 9, seed=10)
    upload = new_upload_id()

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, 2 * PART_SIZE + 3 * MIB, MIB):
            yield data[start : start + MIB]
        # Until the other replica sees a checkpoint, go on sending (nothing), then hang.
        while await replicas[1].upload_size(upload) == 0:
            await anyio.sleep(0.05)
            yield b""
        dies.cancel()
        await anyio.sleep(60)

    await replicas[0].start_upload(upload)
    with anyio.CancelScope() as dies:
        # This replica dies: cancelled mid-stream, no clean-up of its own runs.
        await replicas[0].append(upload, stream(), offset=None, max_size=BIG)
    assert dies.cancel_called
    size = await replicas[1].upload_size(upload)
    assert size in (PART_SIZE, 2 * PART_SIZE)  # whole parts, saved as they completed
    await replicas[1].append(upload, chunks(data[size:]), offset=size, max_size=BIG)
    await replicas[1].commit(upload, digest_of(data))
    assert await read_all(replicas[1], digest_of(data)) == data
    assert keys(replicas[1], "registry/uploads/") == []


async def test_a_failed_append_puts_back_the_state_its_checkpoints_replaced(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_append, "CHECKPOINT_INTERVAL", 0.0)
    first = pattern(3 * MIB, seed=11)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(first), offset=0, max_size=BIG)
    big = pattern(3 * PART_SIZE, seed=12)
    with pytest.raises(SizeInvalid):
        await store.append(upload, chunks(big), offset=len(first), max_size=BIG, length=1)
    with pytest.raises(TooLarge):
        await store.append(upload, chunks(big, big), offset=len(first), max_size=4 * PART_SIZE)
    assert await store.upload_size(upload) == len(first)
    await store.append(upload, chunks(big), offset=len(first), max_size=BIG)
    await store.commit(upload, digest_of(first + big))
    assert await read_all(store, digest_of(first + big)) == first + big


async def test_parts_a_failed_request_left_are_left_out_of_the_blob(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ceph RGW completes an upload only with every part uploaded: stray parts of failed
    requests go into the data object, and only the session's ranges into the blob (hashed
    there for sha512, copied in parts above the copy limit)."""
    monkeypatch.setattr(s3_commit, "COPY_LIMIT", 8 * MIB)
    monkeypatch.setattr(s3_commit, "COPY_PART", 6 * MIB)
    first = pattern(PART_SIZE + 7 * MIB, seed=13)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(first), offset=0, max_size=BIG)
    with pytest.raises(SizeInvalid):  # leaves two stray parts behind
        await store.append(
            upload, chunks(pattern(3 * PART_SIZE)), offset=None, max_size=BIG, length=9
        )
    rest = pattern(2 * MIB, seed=14)
    await store.append(upload, chunks(rest), offset=None, max_size=BIG)
    data = first + rest
    digest = Digest("sha512:" + hashlib.sha512(data).hexdigest())
    with pytest.raises(DigestInvalid):
        await store.commit(upload, Digest("sha512:" + hashlib.sha512(b"x").hexdigest()))
    assert await store.commit(upload, digest) == len(data)
    assert await store.stat(digest) == len(data)
    assert await read_all(store, digest) == data


async def test_a_part_replaced_by_the_loser_of_a_race_fails_the_commit(store: S3BlobStore) -> None:
    first = pattern(6 * MIB, seed=17)  # part 1: both racers go on with part 2
    winner = pattern(PART_SIZE + MIB, seed=15)
    loser = pattern(PART_SIZE + MIB, seed=16)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(first), offset=0, max_size=BIG)

    async def racing() -> AsyncIterator[bytes]:
        yield loser[: PART_SIZE // 2]
        # The winner uploads part 2 and saves; then this request uploads its own part 2.
        await store.append(upload, chunks(winner), offset=None, max_size=BIG)
        yield loser[PART_SIZE // 2 :]

    with pytest.raises(BlobUploadInvalid):
        await store.append(upload, racing(), offset=None, max_size=BIG)
    assert await store.upload_size(upload) == len(first + winner)
    with pytest.raises(BlobUploadInvalid):  # S3 holds the loser's part 2: never a wrong blob
        await store.commit(upload, digest_of(first + winner))
    assert await store.stat(digest_of(first + winner)) is None
    assert keys(store, "registry/blobs/") == []
