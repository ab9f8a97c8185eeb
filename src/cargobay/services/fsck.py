"""``cargobay fsck``: check the metadata against the blob store, and repair what can be.

Checks, online (the registry keeps serving):

* every blob the metadata knows (a repository's link, its ``blobs`` row, a manifest listing
  it) is stored, with the size the metadata records;
* every manifest's bytes (kept in the database) hash to its digest and have its size;
* with ``verify``, every stored blob the metadata knows is read back (streamed) and hashed;
* orphans: stored bytes no metadata knows (older than the run's start).

Repairs (``repair``), none of which removes bytes fsck hasn't proven worthless:

* a blob whose bytes are gone: its ``blobs`` row and the links no version needs are dropped; the
  versions that list it can't be restored here and are reported (pushing the blob again heals
  them: the registry answers ``404 BLOB_UNKNOWN`` for it, so clients upload it again);
* corrupt bytes (wrong digest): claimed ``deleting`` under the blob row's lock and removed, like
  the collector removes garbage, so the registry answers ``404 BLOB_UNKNOWN`` instead of wrong
  bytes and the next push of that digest stores it again; its versions are reported;
* sizes the metadata records wrongly for bytes that hash right are corrected;
* orphans become garbage-collector candidates (deleted after the grace period, re-checked).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import anyio

from cargobay.errors import BlobUnknown
from cargobay.oci.digest import Digest
from cargobay.ports.maintenance import DELETING, FsckStore, GcStore, Known
from cargobay.services.fsck_report import FsckReport
from cargobay.storage.base import BlobStore

#: Digests and manifests examined per metadata query.
BATCH = 500
#: Blobs hashed at once.
VERIFY_CONCURRENCY = 4


#: Called with the phase (``listing``, ``blobs``, ``manifests``, ``verify``, ``repair``), how
#: far it got and its total when known.
Progress = Callable[[str, int, int | None], None]


async def hash_blob(store: BlobStore, digest: Digest) -> tuple[str, int]:
    """The digest the stored bytes of ``digest`` actually have, and their length."""
    algorithm = digest.split(":", 1)[0]
    hasher = hashlib.new(algorithm)
    length = 0
    async for chunk in store.read(digest):
        hasher.update(chunk)
        length += len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}", length


def _versions(known: Known) -> list[list[str]]:
    return [[repo, manifest] for repo, manifest, _ in sorted(set(known.versions))]


class FsckService:
    def __init__(self, fsck: FsckStore, gc: GcStore, store: BlobStore) -> None:
        self.fsck = fsck
        self.gc = gc
        self.store = store

    async def run(
        self, *, verify: bool = False, repair: bool = False, progress: Progress | None = None
    ) -> FsckReport:
        report = FsckReport(verified=verify, repaired=repair)
        tell = progress or (lambda phase, done, total: None)
        started = time.monotonic()
        # Repairs and the collector both decide about blob rows: one at a time.
        with self.gc.exclusive() as mine:
            if repair and not mine:
                report.skipped = True
                return report
            await self._check(report, verify, repair, tell, time.time())
        report.seconds = time.monotonic() - started
        return report

    async def _check(
        self, report: FsckReport, verify: bool, repair: bool, tell: Progress, since: float
    ) -> None:
        stored: dict[str, tuple[int, float]] = {}
        async for blob in self.store.iter_blobs():
            stored[blob.digest] = (blob.size, blob.modified)
            if len(stored) % 1000 == 0:
                tell("listing", len(stored), None)
        report.blobs_stored = len(stored)
        tell("listing", len(stored), len(stored))
        seen: set[str] = set()
        to_verify: list[tuple[Known, int]] = []
        after = ""
        while batch := await self.fsck.known_digests(after, BATCH):
            after = batch[-1]
            details = await self.fsck.details(batch)
            for digest in batch:
                known = details[digest]
                if known.row is not None and known.row[1] == DELETING:
                    continue  # the collector is removing it
                seen.add(digest)
                report.blobs_known += 1
                size = await self._stored_size(digest, stored)
                if size is None:
                    await self._missing(report, known, repair)
                elif known.sizes() - {size}:
                    await self._wrong_size(report, known, size, repair)
                elif verify:
                    to_verify.append((known, size))
            tell("blobs", report.blobs_known, None)
        await self._manifests(report, tell)
        if verify:
            await self._verify(report, to_verify, repair, tell)
        await self._orphans(report, stored, seen, since, repair)

    async def _stored_size(self, digest: str, listed: dict[str, tuple[int, float]]) -> int | None:
        if digest in listed:
            return listed[digest][0]
        # Stored since the listing?
        return await self.store.stat(Digest(digest))

    async def _missing(self, report: FsckReport, known: Known, repair: bool) -> None:
        versions = _versions(known)
        report.missing.append(
            {"digest": known.digest, "links": sorted(known.links), "versions": versions}
        )
        if not repair:
            return
        if await self.store.stat(Digest(known.digest)) is not None:
            return  # pushed again meanwhile
        links, rows = await self.fsck.drop_dangling(known.digest)
        report.links_dropped += links
        report.rows_dropped += rows
        self._lost(report, known.digest, "its bytes are gone", versions)

    def _lost(self, report: FsckReport, digest: str, why: str, versions: list[list[str]]) -> None:
        if versions:
            listed = ", ".join(f"{repo}@{manifest}" for repo, manifest in versions)
            report.unrepaired.append(
                f"blob {digest}: {why}; push it again to heal the versions listing it: {listed}"
            )

    async def _wrong_size(self, report: FsckReport, known: Known, size: int, repair: bool) -> None:
        recorded = sorted(known.sizes() - {size})
        report.size_mismatch.append({"digest": known.digest, "stored": size, "recorded": recorded})
        actual, _ = await self._hash(known.digest)
        if actual is None:
            return
        if actual != known.digest:
            await self._corrupt(report, known, actual, size, repair)
        elif repair:
            report.sizes_fixed += await self.fsck.fix_sizes(known.digest, size)

    async def _hash(self, digest: str) -> tuple[str | None, int]:
        try:
            return await hash_blob(self.store, Digest(digest))
        except BlobUnknown:
            return None, 0  # removed meanwhile (the collector)

    async def _corrupt(
        self, report: FsckReport, known: Known, actual: str, size: int, repair: bool
    ) -> None:
        versions = _versions(known)
        report.corrupt.append({"digest": known.digest, "actual": actual, "versions": versions})
        if not repair:
            return
        await self.fsck.condemn(known.digest, size)
        await self.store.delete(Digest(known.digest))
        await self.gc.forget([known.digest])
        report.corrupt_removed += 1
        self._lost(report, known.digest, "its bytes were corrupt and are removed", versions)

    async def _manifests(self, report: FsckReport, tell: Progress) -> None:
        after = 0
        while rows := await self.fsck.manifests_after(after, BATCH):
            after = rows[-1].id
            for row in rows:
                report.manifests_checked += 1
                algorithm = row.digest.split(":", 1)[0]
                try:
                    actual = f"{algorithm}:{hashlib.new(algorithm, row.content).hexdigest()}"
                except ValueError:
                    actual = "unknown algorithm"
                problem = None
                if actual != row.digest:
                    problem = f"its bytes hash to {actual}"
                elif len(row.content) != row.size:
                    problem = f"{len(row.content)} bytes, recorded {row.size}"
                if problem is not None:
                    report.bad_manifests.append(
                        {
                            "repository": row.repository,
                            "digest": row.digest,
                            "tags": list(row.tags),
                            "problem": problem,
                        }
                    )
                    if report.repaired:
                        report.unrepaired.append(
                            f"manifest {row.repository}@{row.digest}: {problem}; delete the"
                            " version and push it again"
                        )
            tell("manifests", report.manifests_checked, None)

    async def _verify(
        self, report: FsckReport, blobs: list[tuple[Known, int]], repair: bool, tell: Progress
    ) -> None:
        total = sum(size for _, size in blobs)
        limiter = anyio.CapacityLimiter(VERIFY_CONCURRENCY)
        bad: list[tuple[Known, str, int]] = []

        async def one(known: Known, size: int) -> None:
            async with limiter:
                actual, length = await self._hash(known.digest)
                report.bytes_verified += length
                tell("verify", report.bytes_verified, total)
                if actual is not None and actual != known.digest:
                    bad.append((known, actual, length))

        async with anyio.create_task_group() as tasks:
            for known, size in blobs:
                tasks.start_soon(one, known, size)
        for known, actual, length in sorted(bad, key=lambda b: b[0].digest):
            await self._corrupt(report, known, actual, length, repair)

    async def _orphans(
        self,
        report: FsckReport,
        stored: dict[str, tuple[int, float]],
        seen: set[str],
        since: float,
        repair: bool,
    ) -> None:
        unknown = [d for d, (_, modified) in stored.items() if d not in seen and modified < since]
        for start in range(0, len(unknown), BATCH):
            batch = unknown[start : start + BATCH]
            known = await self.fsck.is_known(batch)
            orphans = sorted(d for d in batch if d not in known)
            report.orphans.extend({"digest": d, "size": stored[d][0]} for d in orphans)
            if repair:
                report.orphans_to_gc += await self.fsck.hand_to_gc(orphans)
