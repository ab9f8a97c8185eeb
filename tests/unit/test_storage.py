"""Filesystem store specifics: crash recovery of the hash state, resumable SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
    digest = Digest("sha256:" + hashlib.sha256(b"hello world!").hexdigest())
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
    await store.commit(upload, Digest("sha256:" + hashlib.sha256(b"abc").hexdigest()))
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
    await second.commit(upload, Digest("sha256:" + hashlib.sha256(data).hexdigest()))
    assert [d async for d in first.iter_digests()] == [
        Digest("sha256:" + hashlib.sha256(data).hexdigest())
    ]


async def test_a_session_being_created_is_listed_as_new_not_as_expired(tmp_path: Path) -> None:
    """Between a session's directory and its data file, the listing gives the directory's age:
    an expiry sweep at that moment must not take the session for an old one."""
    import time

    store = FilesystemBlobStore(tmp_path)
    upload = new_upload_id()
    (store.uploads / upload).mkdir()  # start_upload, half done
    listed = dict([u async for u in store.iter_uploads()])
    assert time.time() - listed[upload] < 60
