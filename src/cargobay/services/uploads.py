"""Blob upload sessions: monolithic, streamed, chunked and resumable; expiry of idle ones.

An upload's state lives in the blob store (bytes, running hash) and the metadata store (owner,
last activity), never in one process: any worker or replica can continue it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio

from cargobay.errors import (
    BlobUploadUnknown,
    CargobayError,
    DigestInvalid,
    QuotaExceeded,
    TooLarge,
    Unavailable,
)
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName
from cargobay.ports.registry import BlobLinkStore, Upload, UploadStore
from cargobay.storage.base import BlobStore
from cargobay.storage.uploads import new_upload_id, valid_upload_id

log = logging.getLogger(__name__)

#: How long an upload waits for the garbage collector to finish removing the same bytes.
PIN_WAIT = 0.1
PIN_ATTEMPTS = 300
#: A session's recorded last activity is refreshed once it is older than this share of the
#: timeout (not on every chunk): a fast series of PATCHes writes the database every few seconds.
#: The record may lag by that much, so a session ends only after ``timeout`` plus this share
#: idle: never before the timeout, at most ``TOUCH_SHARE`` of it later.
TOUCH_SHARE = 1 / 60


class QuotaCheck(Protocol):
    async def precheck(self, repository: str, digest: str | None, size: int) -> None:
        """Raise QuotaExceeded if the namespace of ``repository`` has no room for ``size``
        more bytes (none needed if it links blob ``digest`` already)."""


@dataclass(frozen=True, slots=True)
class UploadStatus:
    id: str
    repository: RepositoryName
    size: int


async def _quietly(cleanup: Awaitable[object], what: str) -> None:
    """Run a clean-up on an error path: its own failure is logged, never raised, so it can't
    hide the error that made it necessary (a full disk must not read as a database outage)."""
    try:
        with anyio.CancelScope(shield=True):
            await cleanup
    except CargobayError as exc:  # the database or store is out of reach, or full
        log.warning("%s failed: %s", what, exc.message)
    except Exception:
        log.warning("%s failed", what, exc_info=True)


class UploadService:
    def __init__(
        self,
        store: BlobStore,
        uploads: UploadStore,
        links: BlobLinkStore,
        *,
        max_blob_size: int,
        timeout: float,
        max_sessions: int | None = None,
        quotas: QuotaCheck | None = None,
    ) -> None:
        self.store = store
        #: Namespaces' storage quotas (None: not checked before the commit's own check).
        self.quotas = quotas
        self.uploads = uploads
        self.links = links
        self.max_blob_size = max_blob_size
        self.timeout = timedelta(seconds=timeout)
        #: Most open sessions per owner (None: no bound).
        self.max_sessions = max_sessions

    @property
    def touch_after(self) -> timedelta:
        """How old a session's activity record gets before a chunk refreshes it."""
        return self.timeout * TOUCH_SHARE

    @property
    def idle_limit(self) -> timedelta:
        """How old a session's record may be and the session still live (see TOUCH_SHARE)."""
        return self.timeout + self.touch_after

    async def start(self, repository: RepositoryName, owner: str = "") -> UploadStatus:
        """Open a session for ``owner``. Raises TooManyUploads past :attr:`max_sessions` open
        ones (finished, cancelled and expired sessions don't count)."""
        upload_id = new_upload_id()
        await self.uploads.create(
            upload_id,
            repository,
            owner=owner,
            limit=self.max_sessions,
            live_since=datetime.now(UTC) - self.idle_limit,
        )
        try:
            await self.store.start_upload(upload_id)
        except BaseException:
            await _quietly(self.uploads.delete(upload_id), "forgetting a session not started")
            raise
        return UploadStatus(upload_id, repository, 0)

    async def _check(self, repository: RepositoryName, upload_id: str) -> Upload:
        """The live session ``upload_id`` of ``repository``; else BlobUploadUnknown."""
        upload = await self.uploads.get(upload_id) if valid_upload_id(upload_id) else None
        if upload is None or upload.repository != repository:
            raise BlobUploadUnknown(detail={"upload": upload_id[:64]})
        if upload.touched_at < datetime.now(UTC) - self.idle_limit:
            await self._discard(upload_id)
            raise BlobUploadUnknown("blob upload expired", {"upload": upload_id})
        return upload

    async def _touch(self, upload_id: str, touched_at: datetime) -> datetime:
        """Record activity on the session unless the record (``touched_at``) is recent
        (see :data:`TOUCH_SHARE`). Returns the recorded time."""
        now = datetime.now(UTC)
        if now - touched_at < self.touch_after:
            return touched_at
        await self.uploads.touch(upload_id)
        return now

    async def _discard(self, upload_id: str) -> None:
        await self.store.abort(upload_id)
        await self.uploads.delete(upload_id)

    async def status(self, repository: RepositoryName, upload_id: str) -> UploadStatus:
        await self._check(repository, upload_id)
        return UploadStatus(upload_id, repository, await self.store.upload_size(upload_id))

    async def append(
        self,
        repository: RepositoryName,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        start: int | None,
        length: int | None,
        digest: Digest | None = None,
    ) -> UploadStatus:
        """Append a chunk (``start`` given: it must be the current size) or a stream. A chunk
        whose declared size would take the namespace past its quota is refused (QuotaExceeded)
        before anything is read, and the upload is discarded (``digest``: the blob's, when this is
        the last chunk; nothing counts if the namespace links it already)."""
        touched = (await self._check(repository, upload_id)).touched_at
        if self.quotas is not None and length is not None:
            before = start if start is not None else await self.store.upload_size(upload_id)
            try:
                await self.quotas.precheck(repository, digest, before + length)
            except QuotaExceeded:
                await _quietly(self._discard(upload_id), "discarding an upload over quota")
                raise
        touched = await self._touch(upload_id, touched)
        try:
            size = await self.store.append(
                upload_id, chunks, offset=start, max_size=self.max_blob_size, length=length
            )
        except TooLarge:
            await _quietly(self._discard(upload_id), "discarding an upload too large")
            raise
        except BaseException:
            # The session keeps what was stored; its last activity is now. Whatever this
            # costs, the client sees the error that stopped the upload, not this one's.
            await _quietly(self.uploads.touch(upload_id), "marking an upload's activity")
            raise
        await self._touch(upload_id, touched)
        return UploadStatus(upload_id, repository, size)

    async def finish(
        self,
        repository: RepositoryName,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterable[bytes] | None = None,
        *,
        start: int | None = None,
        length: int | None = None,
    ) -> int:
        """Append the last chunk if any, verify ``digest`` and link the blob. Returns its size.

        On a digest mismatch the session is discarded and nothing is stored.
        """
        if chunks is not None:
            await self.append(
                repository, upload_id, chunks, start=start, length=length, digest=digest
            )
        else:
            await self._check(repository, upload_id)
        uploaded = await self.store.upload_size(upload_id)
        if self.quotas is not None:
            try:
                await self.quotas.precheck(repository, digest, uploaded)
            except QuotaExceeded:
                await _quietly(self._discard(upload_id), "discarding an upload over quota")
                raise
        await self._pin(digest, uploaded)
        try:
            size = await self.store.commit(upload_id, digest)
        except DigestInvalid:
            await _quietly(self._discard(upload_id), "discarding an upload of the wrong digest")
            raise
        try:
            # Checks the quota again, under the namespace's lock: the one that counts.
            await self.links.link(repository, digest, size)
        except QuotaExceeded:
            # Refused: the session goes; the bytes, linked nowhere, go with the next
            # collection (another push may be storing the same ones right now).
            await _quietly(self.uploads.delete(upload_id), "forgetting an upload over quota")
            raise
        await self.uploads.delete(upload_id)
        return size

    async def _pin(self, digest: Digest, size: int) -> None:
        """Keep the garbage collector off these bytes before the store may take them for an
        existing blob's; if it is removing that blob right now, wait until it is gone."""
        for _ in range(PIN_ATTEMPTS):
            if await self.links.pin(digest, size):
                return
            await anyio.sleep(PIN_WAIT)
        raise Unavailable("the garbage collector is removing this blob; retry the upload")

    async def upload(
        self,
        repository: RepositoryName,
        digest: Digest,
        chunks: AsyncIterable[bytes],
        length: int | None,
        owner: str = "",
    ) -> int:
        """A monolithic upload: the whole blob in one request. Nothing is kept on failure;
        with ``length`` known, a blob over the namespace's quota is refused before anything is
        read."""
        if self.quotas is not None and length is not None:
            await self.quotas.precheck(repository, digest, length)
        status = await self.start(repository, owner)
        try:
            return await self.finish(repository, status.id, digest, chunks, length=length)
        except BaseException:
            await _quietly(self._discard(status.id), "discarding a failed upload")
            raise

    async def cancel(self, repository: RepositoryName, upload_id: str) -> None:
        await self._check(repository, upload_id)
        await self._discard(upload_id)

    async def purge_expired(self) -> int:
        """Remove sessions idle longer than the timeout, with their data. Returns how many."""
        cutoff = datetime.now(UTC) - self.idle_limit
        cutoff_epoch = cutoff.timestamp()
        removed = 0
        recent: set[str] = set()
        async for upload_id, modified in self.store.iter_uploads():
            if modified >= cutoff_epoch:
                recent.add(upload_id)  # bytes are still arriving, or it just started
                continue
            upload = await self.uploads.get(upload_id)
            if upload is None or upload.touched_at < cutoff:
                await self._discard(upload_id)
                removed += 1
        for upload_id in await self.uploads.expired(cutoff):
            if upload_id not in recent:
                await self._discard(upload_id)
        if removed:
            log.info("removed %d expired uploads", removed)
        return removed
