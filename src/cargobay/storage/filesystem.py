"""Blobs as files under one directory.

Layout::

    <root>/blobs/<algorithm>/<2 hex>/<encoded>   verified blobs, immutable
    <root>/uploads/<upload id>/data              bytes received so far
    <root>/uploads/<upload id>/hashstate         offset (8 bytes) + saved SHA-256 state

A blob appears only by ``rename`` of a fully received, verified and fsynced upload, so a crash at
any moment leaves either no blob or a whole one. An upload's size is its data file's size: what
was written before a crash is a valid prefix the client can resume from. The hash state is
re-synchronised from the data file when it lags behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import struct
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import anyio.to_thread

from cargobay.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    SizeInvalid,
    TooLarge,
    Unavailable,
    UploadOffsetMismatch,
)
from cargobay.oci.digest import Digest, algorithm_of, encoded_of, new_hasher
from cargobay.storage import hashing
from cargobay.storage.base import StoredBlob
from cargobay.storage.uploads import valid_upload_id

READ_CHUNK = 256 * 1024
WRITE_BATCH = 1024 * 1024
_STATE = struct.Struct("<Q")


def _hash_range(fd: int, algorithm: str, start: int, end: int) -> str:
    hasher = new_hasher(algorithm)
    pos = start
    while pos < end:
        data = os.pread(fd, min(READ_CHUNK * 2, end - pos), pos)
        if not data:
            break
        hasher.update(data)
        pos += len(data)
    return hasher.hexdigest()


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.blobs = self.root / "blobs"
        self.uploads = self.root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    # -- blobs -----------------------------------------------------------------------------

    def _blob_path(self, digest: Digest) -> str:
        encoded = encoded_of(digest)
        return f"{self.blobs}/{algorithm_of(digest)}/{encoded[:2]}/{encoded}"

    async def ready(self) -> None:
        if not (os.access(self.blobs, os.W_OK) and os.access(self.uploads, os.W_OK)):
            raise Unavailable(f"the blob directory {self.root} is not writable")

    async def stat(self, digest: Digest) -> int | None:
        try:
            return os.stat(self._blob_path(digest)).st_size
        except FileNotFoundError:
            return None

    def local_path(self, digest: Digest) -> str | None:
        return self._blob_path(digest)

    async def read(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            fd = os.open(self._blob_path(digest), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobUnknown(detail={"digest": digest}) from None
        try:
            end = os.fstat(fd).st_size if length is None else offset + length
            os.posix_fadvise(fd, offset, end - offset, os.POSIX_FADV_SEQUENTIAL)
            pos = offset
            while pos < end:
                # Small sequential reads (readahead keeps them in the page cache) cost less
                # inline than a thread hop per chunk.
                data = os.pread(fd, min(READ_CHUNK, end - pos), pos)
                if not data:
                    break
                pos += len(data)
                yield data
        finally:
            os.close(fd)

    async def redirect_url(self, digest: Digest) -> str | None:
        return None

    async def delete(self, digest: Digest) -> bool:
        try:
            os.unlink(self._blob_path(digest))
        except FileNotFoundError:
            return False
        return True

    async def iter_digests(self) -> AsyncIterator[Digest]:
        if not self.blobs.is_dir():
            return
        for algorithm in sorted(os.listdir(self.blobs)):
            for prefix in sorted(os.listdir(self.blobs / algorithm)):
                for encoded in sorted(os.listdir(self.blobs / algorithm / prefix)):
                    yield Digest(f"{algorithm}:{encoded}")

    async def iter_blobs(self) -> AsyncIterator[StoredBlob]:
        def scan(directory: str, algorithm: str) -> list[StoredBlob]:
            found = []
            with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # removed since the listing
                    digest = Digest(f"{algorithm}:{entry.name}")
                    found.append(StoredBlob(digest, st.st_size, st.st_mtime))
            return found

        if not self.blobs.is_dir():
            return
        for algorithm in sorted(os.listdir(self.blobs)):
            for prefix in sorted(os.listdir(self.blobs / algorithm)):
                directory = str(self.blobs / algorithm / prefix)
                for blob in await anyio.to_thread.run_sync(scan, directory, algorithm):
                    yield blob

    # -- uploads ---------------------------------------------------------------------------

    def _upload_dir(self, upload_id: str) -> Path:
        if not valid_upload_id(upload_id):
            raise BlobUploadUnknown(detail={"upload": upload_id[:64]})
        return self.uploads / upload_id

    async def start_upload(self, upload_id: str) -> None:
        directory = self._upload_dir(upload_id)
        directory.mkdir()
        (directory / "data").touch()

    async def upload_size(self, upload_id: str) -> int:
        try:
            return os.stat(self._upload_dir(upload_id) / "data").st_size
        except FileNotFoundError:
            raise BlobUploadUnknown(detail={"upload": upload_id}) from None

    def _open_locked(self, upload_id: str) -> int:
        try:
            fd = os.open(self._upload_dir(upload_id) / "data", os.O_RDWR)
        except FileNotFoundError:
            raise BlobUploadUnknown(detail={"upload": upload_id}) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BlobUploadInvalid("another request is writing to this upload") from None
        return fd

    def _load_hash(self, upload_id: str, fd: int, size: int) -> hashing.ResumableSHA256 | None:
        """The SHA-256 state at ``size``, caught up from the data file where it lags."""
        if not hashing.AVAILABLE:
            return None
        hasher: hashing.ResumableSHA256 | None = None
        hashed = 0
        try:
            raw = (self._upload_dir(upload_id) / "hashstate").read_bytes()
            if len(raw) == _STATE.size + hashing.STATE_SIZE:
                (hashed,) = _STATE.unpack_from(raw)
                if hashed <= size:
                    hasher = hashing.ResumableSHA256(raw[_STATE.size :])
        except FileNotFoundError:
            pass
        if hasher is None:
            hasher, hashed = hashing.ResumableSHA256(), 0
        while hashed < size:
            data = os.pread(fd, min(READ_CHUNK * 2, size - hashed), hashed)
            if not data:
                break
            hasher.update(data)
            hashed += len(data)
        return hasher

    def _save_hash(self, upload_id: str, hasher: hashing.ResumableSHA256 | None, size: int) -> None:
        if hasher is None:
            return
        path = self._upload_dir(upload_id) / "hashstate"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # One small write: a killed process can't leave half of it.
            os.pwrite(fd, _STATE.pack(size) + hasher.state(), 0)
        finally:
            os.close(fd)

    async def append(
        self,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        offset: int | None,
        max_size: int,
        length: int | None = None,
    ) -> int:
        fd = self._open_locked(upload_id)
        try:
            start = os.fstat(fd).st_size
            if offset is not None and offset != start:
                raise UploadOffsetMismatch(size=start)
            if length is not None and start + length > max_size:
                raise TooLarge(limit=max_size)
            hasher = self._load_hash(upload_id, fd, start)
            saved = hasher.state() if hasher else None
            pos = start
            pending: list[bytes] = []
            pending_size = 0

            def flush() -> None:
                nonlocal pos, pending_size
                if not pending:
                    return
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                pending_size = 0
                os.pwrite(fd, data, pos)
                if hasher:
                    hasher.update(data)
                pos += len(data)

            def undo() -> None:
                pending.clear()
                os.ftruncate(fd, start)
                if hasher and saved is not None:
                    self._save_hash(upload_id, hashing.ResumableSHA256(saved), start)

            try:
                async for chunk in chunks:
                    if pos + pending_size + len(chunk) > max_size:
                        undo()
                        raise TooLarge(limit=max_size)
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size >= WRITE_BATCH:
                        flush()
            except TooLarge:
                raise
            except BaseException:
                flush()  # keep the valid prefix received before the client went away
                self._save_hash(upload_id, hasher, pos)
                raise
            flush()
            if length is not None and pos - start != length:
                undo()
                raise SizeInvalid(
                    f"received {pos - start} bytes, expected {length}",
                    {"received": pos - start, "expected": length},
                )
            self._save_hash(upload_id, hasher, pos)
            return pos
        finally:
            os.close(fd)

    async def commit(self, upload_id: str, digest: Digest) -> int:
        directory = self._upload_dir(upload_id)
        fd = self._open_locked(upload_id)
        try:
            size = os.fstat(fd).st_size
            algorithm = algorithm_of(digest)
            hasher = self._load_hash(upload_id, fd, size) if algorithm == "sha256" else None
            if hasher is not None:
                actual = hasher.hexdigest()
            else:
                actual = await anyio.to_thread.run_sync(_hash_range, fd, algorithm, 0, size)
            if actual != encoded_of(digest):
                raise DigestInvalid(
                    "provided digest did not match uploaded content",
                    {"expected": digest, "actual": f"{algorithm}:{actual}"},
                )
            await anyio.to_thread.run_sync(os.fsync, fd)
            target = self._blob_path(digest)
            if not os.path.exists(target):
                parent = os.path.dirname(target)
                os.makedirs(parent, exist_ok=True)
                os.rename(directory / "data", target)
                dir_fd = os.open(parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        finally:
            os.close(fd)
        shutil.rmtree(directory, ignore_errors=True)
        return size

    async def abort(self, upload_id: str) -> None:
        with contextlib.suppress(BlobUploadUnknown):
            shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        for entry in os.scandir(self.uploads):
            if not valid_upload_id(entry.name):
                continue
            try:
                mtime = entry.stat().st_mtime
            except FileNotFoundError:
                continue  # removed since the listing
            # A session being created has its directory before its data file: its age is the
            # directory's then (not "infinitely old", which would get it swept as it starts).
            with contextlib.suppress(FileNotFoundError):
                mtime = max(mtime, os.stat(os.path.join(entry.path, "data")).st_mtime)
            yield entry.name, mtime

    async def iter_upload_leftovers(self) -> AsyncIterator[tuple[str, float]]:
        return
        yield  # every upload directory is a session iter_uploads lists
