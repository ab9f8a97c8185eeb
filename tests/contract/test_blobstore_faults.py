"""Blob stores under injected faults: short writes, full disks (ENOSPC), I/O errors (EIO) at
random offsets, failed and truncated S3 parts, and clients that go away mid-body.

Each schedule (drawn by hypothesis with a fixed seed, a bounded number per backend) pushes one
blob the way a client does after errors: ask the session's size (the ``Range`` it reports),
send the rest from there, again and again. Whatever happens:

- the size a session reports is the number of bytes stored: committing the digest of exactly
  that prefix gives a blob of exactly those bytes;
- a session either resumes from its reported size to a byte-exact blob, or is gone (404);
- every blob that becomes visible hashes to its name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kit import digest_of
from test_blobstore import BIG, s3_store

from cargobay.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    InsufficientStorage,
    Unavailable,
)
from cargobay.oci.digest import Digest
from cargobay.storage import fs_append
from cargobay.storage.base import BlobStore
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.memory import MemoryBlobStore
from cargobay.storage.s3 import S3BlobStore
from cargobay.storage.s3_client import S3Calls
from cargobay.storage.uploads import new_upload_id

#: Schedules tried per backend in CI (hypothesis, derandomized: the same ones on every run).
SCHEDULES = {"filesystem": 150, "memory": 60, "s3": 8}

#: Errors a client may see from one PATCH under faults (the store's and its own going away).
FAILURES = (OSError, InsufficientStorage, Unavailable, BlobUploadInvalid)


class ClientGone(ConnectionResetError):
    """The client's connection dropped mid-body."""


class Faults:
    """Decides, per write, whether it fails and how; ``active`` False lets everything through."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.active = True
        self.injected = 0

    def pick(self, kinds: tuple[str, ...]) -> str | None:
        if not self.active or self.rng.random() >= self.rate:
            return None
        self.injected += 1
        return self.rng.choice(kinds)


class FaultyFilesystemStore(FilesystemBlobStore):
    """Writes store a random prefix and report it (short write), store nothing and fail
    (ENOSPC, EDQUOT), or store a random prefix and fail anyway (EIO after a partial write)."""

    def __init__(self, root: Path, faults: Faults) -> None:
        super().__init__(root)
        self.faults = faults

    def _pwrite(self, fd: int, data: memoryview, offset: int) -> int:
        kind = self.faults.pick(("short", "enospc", "edquot", "eio"))
        cut = self.faults.rng.randrange(len(data)) if len(data) > 1 else 0
        if kind == "short" and cut:
            return os.pwrite(fd, data[:cut], offset)
        if kind in ("enospc", "edquot"):
            code = errno.ENOSPC if kind == "enospc" else errno.EDQUOT
            raise OSError(code, os.strerror(code))
        if kind == "eio":
            os.pwrite(fd, data[:cut], offset)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pwrite(fd, data, offset)


class FaultyS3Calls(S3Calls):
    """Part and segment uploads fail (the store unreachable), or are stored truncated while the
    store answers success (a store that loses bytes: the session must never commit them)."""

    def __init__(self, calls: S3Calls, faults: Faults) -> None:
        super().__init__(calls.client, calls.bucket, slow_client=calls.slow, bulk_client=calls.bulk)
        self.faults = faults

    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        name = getattr(function, "__name__", "")
        is_bytes = name == "upload_part" or (
            name == "put_object" and "/segments/" in str(kwargs.get("Key", ""))
        )
        if is_bytes:
            kind = self.faults.pick(("fail", "fail", "fail", "truncate"))
            if kind == "fail":
                raise Unavailable("the blob store is unavailable (injected)")
            if kind == "truncate" and len(kwargs["Body"]) > 1:
                cut = self.faults.rng.randrange(1, len(kwargs["Body"]))
                kwargs = {**kwargs, "Body": bytes(kwargs["Body"][:cut]), "ContentLength": cut}
        return await super().run(function, *args, **kwargs)


async def _stream(data: bytes, rng: random.Random, gone_at: int | None) -> AsyncIterator[bytes]:
    pos = 0
    while pos < len(data):
        step = min(rng.choice((1, 7, 4096, 65536, 300_000, 1 << 20)), len(data) - pos)
        if gone_at is not None and pos + step > gone_at:
            if gone_at > pos:
                yield data[pos:gone_at]
            raise ClientGone("client went away")
        yield data[pos : pos + step]
        pos += step
        await anyio.lowlevel.checkpoint()


async def _check_visible(store: BlobStore) -> int:
    """Every visible blob hashes to its name. Returns how many there are."""
    count = 0
    async for digest in store.iter_digests():
        hasher = hashlib.sha256()
        async for piece in store.read(digest):
            hasher.update(piece)
        assert f"sha256:{hasher.hexdigest()}" == digest, "a blob does not hash to its name"
        count += 1
    return count


async def _push_through_faults(
    store: BlobStore,
    faults: Faults,
    data: bytes,
    rng: random.Random,
    commit_prefix_at: int,
    quiet_after: int,
) -> None:
    """Push ``data`` the way a client does after errors; see the module docstring. Faults
    stop after ``quiet_after`` requests; at request ``commit_prefix_at`` the client commits
    what the session reports it holds."""
    upload = new_upload_id()
    await store.start_upload(upload)
    for attempt in range(quiet_after + 10):
        if attempt == quiet_after:
            faults.active = False  # the disk has room again, the store answers again
        try:
            size = await store.upload_size(upload)  # what GET on the session reports as Range
        except BlobUploadUnknown:
            return await _gone(store, upload, data)
        assert 0 <= size <= len(data)
        if attempt == commit_prefix_at or size == len(data):
            break
        gone_at = None
        if faults.active and rng.random() < 0.3:
            gone_at = rng.randrange(len(data) - size + 1)
        try:
            await store.append(
                upload, _stream(data[size:], rng, gone_at), offset=size, max_size=BIG
            )
        except BlobUploadUnknown:
            return await _gone(store, upload, data)
        except FAILURES:
            continue
    else:
        pytest.fail("the upload never completed once faults stopped")
    faults.active = False
    if size < len(data):
        # Not all there yet: the whole blob's digest must be refused, nothing made visible.
        try:
            with pytest.raises(DigestInvalid):
                await store.commit(upload, digest_of(data))
        except BlobUploadUnknown:
            return await _gone(store, upload, data)
        assert await store.stat(digest_of(data)) is None
    expected = data[:size]
    digest: Digest = digest_of(expected)
    try:
        assert await store.commit(upload, digest) == size
    except BlobUploadUnknown:
        return await _gone(store, upload, data)
    got = b"".join([piece async for piece in store.read(digest)])
    assert got == expected, "the session's reported size is not the bytes it stored"
    assert await _check_visible(store) == 1


async def _gone(store: BlobStore, upload: str, data: bytes) -> None:
    """A session that is gone stays gone, and left no blob behind."""
    with pytest.raises(BlobUploadUnknown):
        await store.upload_size(upload)
    assert await _check_visible(store) == 0


def _schedules(backend: str, max_size: int, quiet_after: int) -> Callable[[Any], Any]:
    """Run the test on SCHEDULES[backend] schedules: blob size, seed of the faults and of the
    client's behaviour, fault rate, and the request after which the client commits."""

    def decorate(test: Any) -> Any:
        return settings(
            max_examples=SCHEDULES[backend],
            derandomize=True,  # a fixed seed: CI tries the same schedules every run
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: CI time stays bounded
            suppress_health_check=list(HealthCheck),
        )(
            given(
                size=st.integers(0, max_size),
                seed=st.integers(0, 2**32 - 1),
                rate=st.sampled_from([0.05, 0.2, 0.5]),
                commit_prefix_at=st.integers(0, quiet_after + 3),
            )(test)
        )

    return decorate


def _run(
    make_store: Callable[[Path, Faults], BlobStore],
    size: int,
    seed: int,
    rate: float,
    commit_prefix_at: int,
    quiet_after: int,
    patch: AbstractContextManager[Any] | None = None,
) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(size)
    faults = Faults(seed ^ 0x5EED, rate)
    with tempfile.TemporaryDirectory() as root, patch or nullcontext():
        store = make_store(Path(root), faults)
        anyio.run(_push_through_faults, store, faults, data, rng, commit_prefix_at, quiet_after)


@_schedules("filesystem", 96 * 1024, quiet_after=25)
def test_filesystem_store_counts_only_stored_bytes(
    size: int, seed: int, rate: float, commit_prefix_at: int
) -> None:
    # Small write batches: many writes per request, so faults land at many offsets.
    batch = random.Random(seed).choice((1, 512, 4096, 65536))
    _run(
        FaultyFilesystemStore,
        size,
        seed,
        rate,
        commit_prefix_at,
        25,
        mock.patch.object(fs_append, "WRITE_BATCH", batch),
    )


@_schedules("memory", 96 * 1024, quiet_after=25)
def test_memory_store_under_client_faults(
    size: int, seed: int, rate: float, commit_prefix_at: int
) -> None:
    _run(lambda root, faults: MemoryBlobStore(), size, seed, rate, commit_prefix_at, 25)


def test_s3_store_counts_only_stored_bytes(s3_service: Any, s3_bucket: str) -> None:
    service, bucket = s3_service, s3_bucket

    def make(root: Path, faults: Faults) -> S3BlobStore:
        base = s3_store(service, bucket, prefix=f"faults-{root.name}/")
        base.s3 = FaultyS3Calls(base.s3, faults)
        return base

    # Parts are 8 MiB: sizes past two parts, so failed and truncated parts and tails both occur.
    @_schedules("s3", 20 * 1024 * 1024, quiet_after=4)
    def schedule(size: int, seed: int, rate: float, commit_prefix_at: int) -> None:
        _run(make, size, seed, rate, commit_prefix_at, 4)

    schedule()
