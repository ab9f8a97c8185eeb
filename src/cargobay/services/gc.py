"""Online garbage collection: frees the bytes of blobs nothing references any more, leftover
upload data, and bytes no metadata knows, while pushes and pulls go on.

The safety argument (details in :mod:`cargobay.metadata.blobrows` and :mod:`cargobay.metadata.gc`):

* only candidates are examined: blobs purge or unlink left without a link, and rows no link or
  manifest references; a manifest row (any version, index child, referrer, or deleted version
  within its restore window) is a reference;
* a candidate is removed only after the grace period, and only once a transaction holding the
  blob row's exclusive lock has re-checked that nothing links or lists it and nothing uploaded
  it since the cutoff; every upload, mount and manifest PUT takes a lock on the same row, so
  none can start using it between that check and the deletion;
* the decision (``deleting``) is committed before a byte is removed, and the row dropped after:
  a crash in between leaves ``deleting`` rows the next run finishes; an upload of the same bytes
  waits for that, then stores them again;
* one collector runs at a time (an advisory lock on PostgreSQL, a file lock on SQLite).

``run_once`` is the whole job, for ``cargobay gc`` and for a scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import anyio

from cargobay.oci.digest import Digest
from cargobay.ports.maintenance import BATCH, GcStore
from cargobay.ports.registry import UploadStore
from cargobay.services.uploads import UploadService
from cargobay.storage.base import BlobStore

log = logging.getLogger(__name__)

#: Blob deletions in flight at once (an object store answers each in a few milliseconds).
DELETE_CONCURRENCY = 8


@dataclass
class GcReport:
    """What one run did (or, dry, would do)."""

    dry_run: bool
    grace_seconds: float
    #: Another collector was running: this run did nothing.
    skipped: bool = False
    #: Deletions an interrupted run had committed, finished now.
    recovered: int = 0
    #: Blobs found without any reference, recorded as candidates (their grace starts).
    discovered: int = 0
    #: Candidates past the grace period re-checked under their locks.
    blobs_checked: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    #: Candidates referenced again, or locked by a push right now.
    in_use: int = 0
    #: Candidates uploaded again within the grace period.
    recent: int = 0
    #: Blobs listed in the store, and those no metadata knew (older than the grace period).
    store_blobs_listed: int = 0
    orphans_deleted: int = 0
    orphan_bytes: int = 0
    uploads_removed: int = 0
    upload_leftovers_removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        if self.skipped:
            return "gc: skipped, another garbage collection is running"
        verb = "would free" if self.dry_run else "freed"
        return (
            f"gc{' (dry run)' if self.dry_run else ''}: {verb} {format_size(self.total_bytes)} —"
            f" {self.blobs_deleted} blobs of {self.blobs_checked} checked"
            f" ({self.in_use} in use, {self.recent} recent), {self.orphans_deleted} orphans,"
            f" {self.recovered} recovered, {self.uploads_removed + self.upload_leftovers_removed}"
            f" uploads; {self.discovered} new candidates; {self.seconds:.1f}s"
        )

    @property
    def total_bytes(self) -> int:
        return self.bytes_freed + self.orphan_bytes


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


#: Called after each step with the phase (``recover``, ``candidates``, ``orphans``, ``uploads``)
#: and the report so far; ``total`` is the phase's size when known.
Progress = Callable[[str, GcReport, int | None], None]


class GcService:
    def __init__(
        self,
        gc: GcStore,
        store: BlobStore,
        uploads: UploadService,
        sessions: UploadStore,
        *,
        grace: float,
    ) -> None:
        self.gc = gc
        self.store = store
        self.uploads = uploads
        self.sessions = sessions
        self.grace = grace

    async def run_once(
        self, *, dry_run: bool = False, grace: float | None = None, progress: Progress | None = None
    ) -> GcReport:
        """One whole collection. Nothing is changed with ``dry_run``."""
        grace = self.grace if grace is None else grace
        report = GcReport(dry_run=dry_run, grace_seconds=grace)
        started = time.monotonic()
        tell = progress or (lambda phase, report, total: None)
        with self.gc.exclusive() as mine:
            if not mine:
                report.skipped = True
                return report
            cutoff = datetime.now(UTC) - timedelta(seconds=grace)
            await self._recover(report, dry_run, tell)
            report.discovered = await self.gc.discover(cutoff, dry_run=dry_run)
            await self._candidates(report, cutoff, dry_run, tell)
            await self._orphans(report, cutoff, dry_run, tell)
            await self._uploads(report, cutoff, dry_run, tell)
        report.seconds = time.monotonic() - started
        if not dry_run and (report.total_bytes or report.blobs_deleted or report.recovered):
            log.info("%s", report.summary())
        return report

    async def _recover(self, report: GcReport, dry_run: bool, tell: Progress) -> None:
        pending = await self.gc.deleting()
        if not pending:
            return
        report.recovered = len(pending)
        if not dry_run:
            report.bytes_freed += await self._remove(pending)
            await self.gc.forget([d for d, _ in pending])
        tell("recover", report, len(pending))

    async def _candidates(
        self, report: GcReport, cutoff: datetime, dry_run: bool, tell: Progress
    ) -> None:
        after = ""
        while True:
            batch = await self.gc.candidates(cutoff, after, BATCH)
            if not batch:
                return
            after = batch[-1]
            claimed = await self.gc.claim(batch, cutoff, dry_run=dry_run)
            report.blobs_checked += len(batch)
            report.in_use += claimed.in_use
            report.recent += claimed.recent
            report.blobs_deleted += len(claimed.deleting)
            if dry_run:
                report.bytes_freed += sum(size for _, size in claimed.deleting)
            else:
                report.bytes_freed += await self._remove(claimed.deleting)
                await self.gc.forget([d for d, _ in claimed.deleting])
            tell("candidates", report, None)

    async def _orphans(
        self, report: GcReport, cutoff: datetime, dry_run: bool, tell: Progress
    ) -> None:
        """Bytes in the store no row knows, written before the cutoff (a crash between a
        store write and its metadata, or data from before blob rows existed)."""
        before = cutoff.timestamp()
        batch: dict[str, int] = {}

        async def flush() -> None:
            known = await self.gc.known(list(batch))
            unknown = {d: s for d, s in batch.items() if d not in known}
            batch.clear()
            if not unknown:
                return
            if dry_run:
                report.orphans_deleted += len(unknown)
                report.orphan_bytes += sum(unknown.values())
                return
            claimed = await self.gc.claim_orphans(unknown)
            report.orphan_bytes += await self._remove([(d, unknown[d]) for d in claimed])
            report.orphans_deleted += len(claimed)
            await self.gc.forget(claimed)

        async for blob in self.store.iter_blobs():
            report.store_blobs_listed += 1
            if blob.modified < before:
                batch[blob.digest] = blob.size
            if len(batch) >= BATCH:
                await flush()
                tell("orphans", report, None)
        if batch:
            await flush()
        tell("orphans", report, None)

    async def _uploads(
        self, report: GcReport, cutoff: datetime, dry_run: bool, tell: Progress
    ) -> None:
        if dry_run:
            expired = datetime.now(UTC) - self.uploads.timeout
            async for upload_id, modified in self.store.iter_uploads():
                if modified >= expired.timestamp():
                    continue
                session = await self.sessions.get(upload_id)
                if session is None or session.touched_at < expired:
                    report.uploads_removed += 1
        else:
            report.uploads_removed = await self.uploads.purge_expired()
        before = cutoff.timestamp()
        async for upload_id, modified in self.store.iter_upload_leftovers():
            if modified < before:
                report.upload_leftovers_removed += 1
                if not dry_run:
                    await self.store.abort(upload_id)
        tell("uploads", report, None)

    async def _remove(self, blobs: Sequence[tuple[str, int]]) -> int:
        """Delete the bytes of claimed blobs; returns how many bytes went."""
        freed = 0
        limiter = anyio.CapacityLimiter(DELETE_CONCURRENCY)

        async def one(digest: Digest, size: int) -> None:
            nonlocal freed
            async with limiter:
                if not size:
                    size = await self.store.stat(digest) or 0
                if await self.store.delete(digest):
                    freed += size

        async with anyio.create_task_group() as tasks:
            for digest, size in blobs:
                tasks.start_soon(one, Digest(digest), size)
        return freed
