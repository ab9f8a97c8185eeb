"""Filesystem store specifics: crash recovery of the hash state, resumable SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kit import digest_of

from cargobay.oci.digest import Digest
from cargobay.storage import hashing
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.uploads import new_upload_id

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_resumable_sha256_survives_a_save_and_restore() -> None:
    data = os.urandom(1_000_003)
    first = hashing.ResumableSHA256()
    first.update(data[:777])
    saved = first.state()
    second = hashing.ResumableSHA256(saved)
    second.update(data[777:])
    assert second.hexdigest() == hashlib.sha256(data).hexdigest()
    assert second.hexdigest() == second.hexdigest()  # reading the digest keeps the state
    with pytest.raises(ValueError):
        hashing.ResumableSHA256(b"short")


def test_saved_states_are_tagged_and_only_this_library_restores_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A state names its format and the library that wrote it; anything else (another
    libcrypto, an untagged or damaged state) is not restored: the caller re-hashes."""
    hasher = hashing.new()
    assert hasher is not None
    hasher.update(b"abc")
    state = hasher.state()
    assert len(state) == hashing.STATE_SIZE
    assert state[:4] == b"cbh" + bytes([hashing.FORMAT_VERSION])
    restored = hashing.restore(state)
    assert restored is not None and restored.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    foreign = state[:4] + bytes(8) + state[12:]
    untagged = state[12:]  # the struct alone, as saved before states were tagged
    damaged = state[:-8] + b"\xff" * 8  # num, md_len out of range
    for bad in (foreign, untagged, damaged, b"", None):
        assert hashing.restore(bad) is None
    with pytest.raises(ValueError):
        hashing.ResumableSHA256(foreign)
    monkeypatch.setattr(
        hashing, "_HEADER", b"cbh" + bytes([hashing.FORMAT_VERSION + 1]) + state[4:12]
    )
    assert hashing.restore(state) is None  # a newer format: not ours


def test_the_fast_path_can_be_turned_off() -> None:
    hasher = hashing.new()
    assert hasher is not None
    state = hasher.state()
    try:
        hashing.configure(enabled=False)
        assert not hashing.AVAILABLE
        assert hashing.new() is None
        assert hashing.restore(state) is None
        assert "unavailable: turned off" in hashing.describe()
    finally:
        hashing.configure(enabled=True)
    assert hashing.AVAILABLE and "libcrypto.so." in hashing.describe()


def test_only_a_versioned_libcrypto_is_ever_loaded() -> None:
    versioned = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.3.dylib", "libcrypto-3.so.3")
    unversioned = ("libcrypto.so", "libcrypto.dylib", "libcrypto.so.", "libcryptox.so.3")
    assert all(hashing._VERSIONED.fullmatch(name) for name in versioned)
    assert not any(hashing._VERSIONED.fullmatch(name) for name in unversioned)


async def test_bytes_written_after_the_last_saved_hash_state_are_hashed_on_commit(
    tmp_path: Path,
) -> None:
    """A worker killed between writing data and saving the hash state loses nothing."""
    store = FilesystemBlobStore(tmp_path)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(b"hello "), offset=0, max_size=100)
    with open(tmp_path / "uploads" / upload / "data", "ab") as f:
        f.write(b"world")  # data on disk, hash state still at 6
    assert await store.upload_size(upload) == 11
    await store.append(upload, chunks(b"!"), offset=11, max_size=100)
    digest = Digest(digest_of(b"hello world!"))
    await store.commit(upload, digest)
    assert (
        tmp_path / "blobs" / "sha256" / digest[7:9] / digest[7:]
    ).read_bytes() == b"hello world!"


async def test_missing_hash_state_is_rebuilt(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    upload = new_upload_id()
    await store.start_upload(upload)
    await store.append(upload, chunks(b"abc"), offset=0, max_size=100)
    (tmp_path / "uploads" / upload / "hashstate").unlink()
    await store.commit(upload, Digest(digest_of(b"abc")))
    assert not (tmp_path / "uploads" / upload).exists()


async def test_a_second_store_instance_continues_an_upload(tmp_path: Path) -> None:
    """Another worker process sees the same state: nothing lives in one process's memory."""
    upload = new_upload_id()
    first = FilesystemBlobStore(tmp_path)
    await first.start_upload(upload)
    await first.append(upload, chunks(b"part one, "), offset=0, max_size=100)
    second = FilesystemBlobStore(tmp_path)
    await second.append(upload, chunks(b"part two"), offset=10, max_size=100)
    data = b"part one, part two"
    await second.commit(upload, Digest(digest_of(data)))
    assert [d async for d in first.iter_digests()] == [Digest(digest_of(data))]


async def test_a_stalled_body_is_on_disk_within_the_idle_flush(tmp_path: Path) -> None:
    """What arrived before a client stalled is stored while the request is still open, so a
    server killed then (kill -9, or at the end of a bounded stop) keeps every byte received."""
    import anyio

    store = FilesystemBlobStore(tmp_path)
    upload = new_upload_id()
    await store.start_upload(upload)
    resume = anyio.Event()
    received = os.urandom(12345)  # far below a write batch

    async def stalling() -> AsyncIterator[bytes]:
        yield received
        await resume.wait()
        yield b"rest"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: store.append(upload, stalling(), offset=0, max_size=1 << 30))
        await anyio.sleep(1.6)  # IDLE_FLUSH is 0.5 s
        assert await store.upload_size(upload) == len(received)
        resume.set()
    assert await store.upload_size(upload) == len(received) + 4
    digest = Digest(digest_of(received + b"rest"))
    assert await store.commit(upload, digest) == len(received) + 4


@pytest.mark.parametrize(
    ("status", "code"), [(403, "QuotaExceeded"), (507, "InsufficientStorage"), (507, "")]
)
async def test_a_full_object_store_is_out_of_storage(status: int, code: str) -> None:
    from botocore.exceptions import ClientError

    from cargobay.errors import InsufficientStorage
    from cargobay.storage.s3_client import S3Calls

    def full(**_: object) -> None:
        raise ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
        )

    calls = S3Calls(client=None, bucket="b")  # type: ignore[arg-type]
    with pytest.raises(InsufficientStorage) as refused:
        await calls.run(full)
    assert "bucket b" in refused.value.where


async def test_a_session_being_created_is_listed_as_new_not_as_expired(tmp_path: Path) -> None:
    """Between a session's directory and its data file, the listing gives the directory's age:
    an expiry sweep at that moment must not take the session for an old one."""
    import time

    store = FilesystemBlobStore(tmp_path)
    upload = new_upload_id()
    (store.uploads / upload).mkdir()  # start_upload, half done
    listed = dict([u async for u in store.iter_uploads()])
    assert time.time() - listed[upload] < 60
