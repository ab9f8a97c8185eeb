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
import errno
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
from cargobay.storage import hashing, space
from cargobay.storage.base import StoredBlob
from cargobay.storage.fs_append import FileAppend, WriteFailed
from cargobay.storage.uploads import valid_upload_id

READ_CHUNK = 256 * 1024
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
        try:
            directory.mkdir()
            (directory / "data").touch()
        except OSError as exc:
            if space.is_out_of_space(exc):
                shutil.rmtree(directory, ignore_errors=True)
                raise space.out_of_space("the filesystem blob store", self.root, exc) from exc
            raise

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
        """The SHA-256 state at ``size``, caught up from the data file where it lags; None
        unless exactly ``size`` stored bytes are hashed (the caller then hashes the file)."""
        if not hashing.AVAILABLE:
            return None
        hasher: hashing.ResumableSHA256 | None = None
        hashed = 0
        try:
            raw = (self._upload_dir(upload_id) / "hashstate").read_bytes()
            if len(raw) == _STATE.size + hashing.STATE_SIZE:
                (hashed,) = _STATE.unpack_from(raw)
                if hashed <= size:
                    # None for a state another library wrote: re-hashed from the data below.
                    hasher = hashing.restore(raw[_STATE.size :])
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
        return hasher if hashed == size else None

    def _pwrite(self, fd: int, data: memoryview, offset: int) -> int:
        """Write what it can of ``data`` at ``offset``; how many bytes were stored. (The one
        place upload bytes are written: tests inject short writes and errors here.)"""
        return os.pwrite(fd, data, offset)

    def _save_hash(self, upload_id: str, hasher: hashing.ResumableSHA256 | None, size: int) -> None:
        """Save the hash state at ``size``. Best effort, never raises: a missing or older state
        is caught up from the data file (see :meth:`_load_hash`)."""
        if hasher is None:
            return
        path = self._upload_dir(upload_id) / "hashstate"
        record = _STATE.pack(size) + hasher.state()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                # One small write: a killed process can't leave half of it. A short one (a full
                # disk) must not stay either.
                if os.pwrite(fd, record, 0) != len(record):
                    raise OSError(errno.ENOSPC, "short write of the hash state")
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _keep_prefix(
        self, upload_id: str, fd: int, hasher: hashing.ResumableSHA256 | None, size: int
    ) -> None:
        """After a failed append: the session is the first ``size`` bytes, which were stored.
        Never raises: the error that brought us here is the one the client must see."""
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)  # drop anything a failed write may have left beyond them
        self._save_hash(upload_id, hasher, size)

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
            writer = FileAppend(fd, start, hasher, self._pwrite)

            def undo() -> None:
                writer.drop_pending()
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                if hasher and saved is not None:
                    self._save_hash(upload_id, hashing.ResumableSHA256(saved), start)

            try:
                await writer.receive(chunks, max_size)
            except TooLarge:
                undo()
                raise
            except WriteFailed as failed:
                # The store failed: keep exactly the bytes stored before it did, so the session
                # resumes from the Range it reports.
                self._keep_prefix(upload_id, fd, hasher, writer.pos)
                exc = failed.error
                if space.is_out_of_space(exc):
                    raise space.out_of_space("the filesystem blob store", self.root, exc) from exc
                raise exc from None
            except BaseException:
                # Keep the valid prefix received before the client went away (if storing it
                # fails, what was stored until then is kept).
                with contextlib.suppress(WriteFailed):
                    writer.flush()
                self._keep_prefix(upload_id, fd, hasher, writer.pos)
                raise
            pos = writer.pos
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
            try:
                await anyio.to_thread.run_sync(os.fsync, fd)
                self._publish(directory / "data", self._blob_path(digest))
            except OSError as exc:
                if space.is_out_of_space(exc):
                    raise space.out_of_space("the filesystem blob store", self.root, exc) from exc
                raise
        finally:
            os.close(fd)
        shutil.rmtree(directory, ignore_errors=True)
        return size

    @staticmethod
    def _publish(data: Path, target: str) -> None:
        """Make the fsynced ``data`` the blob at ``target``, durably (unless it exists)."""
        if os.path.exists(target):
            return
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        os.rename(data, target)
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

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
