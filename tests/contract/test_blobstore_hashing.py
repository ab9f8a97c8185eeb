"""Chunked uploads stay right when processes disagree about the resumable SHA-256: a replica
without it (or with it turned off), or one whose libcrypto wrote a state this one can't trust,
re-hashes the stored bytes instead of failing or trusting a foreign state."""

from __future__ import annotations

import hashlib
import os

import pytest
from kit import digest_of
from test_blobstore import BIG, chunks, read_all, store  # noqa: F401

from cargobay.storage import hashing
from cargobay.storage.base import BlobStore
from cargobay.storage.uploads import new_upload_id

pytestmark = pytest.mark.anyio


async def _append(store: BlobStore, upload: str, data: bytes, offset: int) -> int:  # noqa: F811
    return await store.append(upload, chunks(data), offset=offset, max_size=BIG)


async def test_a_replica_without_the_resumable_hash_continues_and_commits(
    store: BlobStore,  # noqa: F811
) -> None:
    parts = [os.urandom(300_000), os.urandom(200_001), os.urandom(123)]
    data = b"".join(parts)
    upload = new_upload_id()
    await store.start_upload(upload)
    size = await _append(store, upload, parts[0], 0)
    try:
        hashing.configure(enabled=False)  # the next request lands on a replica without it
        size = await _append(store, upload, parts[1], size)
    finally:
        hashing.configure(enabled=True)
    size = await _append(store, upload, parts[2], size)
    assert size == len(data)
    assert await store.commit(upload, digest_of(data)) == len(data)
    assert await read_all(store, digest_of(data)) == data


async def test_a_state_another_library_wrote_is_not_trusted(
    store: BlobStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parts = [os.urandom(250_000), os.urandom(70_000)]
    data = b"".join(parts)
    upload = new_upload_id()
    await store.start_upload(upload)
    ours = hashing._HEADER
    theirs = ours[:4] + hashlib.sha256(b"another libcrypto").digest()[:8]

    def their_state(self: hashing.ResumableSHA256) -> bytes:
        # Another library's tag, and a struct that means something else to this one.
        raw: bytes = self._ctx.raw
        return theirs + bytes(32) + raw[32:]

    # The first request runs on a replica with another libcrypto.
    with monkeypatch.context() as patch:
        patch.setattr(hashing.ResumableSHA256, "state", their_state)
        size = await _append(store, upload, parts[0], 0)
    size = await _append(store, upload, parts[1], size)
    assert await store.commit(upload, digest_of(data)) == len(data)
    assert await read_all(store, digest_of(data)) == data


async def test_committing_on_a_replica_without_it(store: BlobStore) -> None:  # noqa: F811
    data = os.urandom(6 * 1024 * 1024 + 5)  # past one S3 part: the running hash is saved
    upload = new_upload_id()
    await store.start_upload(upload)
    await _append(store, upload, data, 0)
    try:
        hashing.configure(enabled=False)
        assert await store.commit(upload, digest_of(data)) == len(data)
    finally:
        hashing.configure(enabled=True)
    assert await read_all(store, digest_of(data)) == data
