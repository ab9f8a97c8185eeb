"""What the operator's maintenance jobs need: the garbage collector's and ``fsck``'s stores, the
lock that elects one runner of background jobs, and the values they return."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

#: States of a blob's row: its bytes are in use, or the collector is removing them.
LIVE = "live"
DELETING = "deleting"
#: Rows the collector claims per transaction: locks are held briefly, and an upload of the same
#: bytes waits at most for one batch's deletes.
BATCH = 200


@dataclass(frozen=True, slots=True)
class Claimed:
    """The outcome of one claim: blobs now ``deleting`` (digest, size), and how many were left
    because something references them, or they were uploaded within the grace period."""

    deleting: list[tuple[str, int]]
    in_use: int
    recent: int


@dataclass(slots=True)
class Known:
    """What the metadata says about one digest."""

    digest: str
    #: Size per repository linking it.
    links: dict[str, int] = field(default_factory=dict)
    #: The ``blobs`` row: (size, state), if there is one.
    row: tuple[int, str] | None = None
    #: Versions listing it: (repository, manifest digest, deleted).
    versions: list[tuple[str, str, bool]] = field(default_factory=list)

    def sizes(self) -> set[int]:
        found = set(self.links.values())
        if self.row is not None and self.row[1] == LIVE:
            found.add(self.row[0])
        return found


@dataclass(frozen=True, slots=True)
class ManifestRow:
    id: int
    repository: str
    digest: str
    size: int
    content: bytes
    tags: tuple[str, ...]


class GcStore(Protocol):
    """The collector's side of the metadata (see :mod:`cargobay.metadata.gc`)."""

    def exclusive(self) -> contextlib.AbstractContextManager[bool]:
        """Hold the one-collector-at-a-time lock while inside; yields whether it was taken."""

    async def deleting(self) -> list[tuple[str, int]]:
        """Blobs a collector claimed but did not finish removing (it crashed or was stopped)."""

    async def forget(self, digests: Sequence[str]) -> None:
        """The bytes of these ``deleting`` blobs are gone: drop their rows."""

    async def discover(self, cutoff: datetime, *, dry_run: bool) -> int:
        """Record blobs nothing references (and not uploaded since ``cutoff``) as candidates;
        their grace period starts now. Returns how many."""

    async def candidates(self, cutoff: datetime, after: str, limit: int) -> list[str]:
        """Candidates recorded before ``cutoff``, in digest order after ``after``."""

    async def claim(self, digests: Sequence[str], cutoff: datetime, *, dry_run: bool) -> Claimed:
        """Re-check candidates under their rows' exclusive locks and mark those still
        unreferenced ``deleting`` (committed before any byte is touched). Rows another
        transaction holds right now are in use: skipped, tried again next run. Candidates that
        are referenced again are dropped; recently uploaded ones stay candidates."""

    async def known(self, digests: Sequence[str]) -> set[str]:
        """Which of ``digests`` have a row (the metadata knows them)."""

    async def claim_orphans(self, sizes: dict[str, int]) -> list[str]:
        """Bytes the metadata doesn't know (no row, no reference): claimed by creating their
        row ``deleting``, unless an upload created it first. Returns the claimed digests."""


class FsckStore(Protocol):
    async def known_digests(self, after: str, limit: int) -> list[str]:
        """Known digests in byte order after ``after``."""

    async def details(self, digests: Sequence[str]) -> dict[str, Known]: ...

    async def is_known(self, digests: Sequence[str]) -> set[str]:
        """Which of ``digests`` the metadata knows now (links, rows, manifests, or collector
        candidates)."""

    async def manifests_after(self, after: int, limit: int) -> list[ManifestRow]:
        """Manifest rows (any version, deleted ones too) in id order after ``after``."""

    async def drop_dangling(self, digest: str) -> tuple[int, int]:
        """The bytes of ``digest`` are gone: drop its ``live`` row and the links no version of
        their repository lists (a version that lists it keeps its link: pushing the blob again
        heals it). An upload that pinned the row before re-creates it when it links. Returns
        (links dropped, rows dropped)."""

    async def fix_sizes(self, digest: str, size: int) -> int:
        """The stored bytes of ``digest`` hash right but are ``size`` long: correct the links
        and the row that say otherwise. Returns how many were corrected."""

    async def condemn(self, digest: str, size: int) -> None:
        """Corrupt bytes: claim the blob ``deleting`` (creating its row if needed), as the
        collector claims garbage; the caller then removes the bytes and forgets the row. An
        upload of this digest waits meanwhile, then stores it again."""

    async def hand_to_gc(self, digests: Sequence[str]) -> int:
        """Bytes no metadata knows: record them as collector candidates (their grace period
        starts now; the collector re-checks them under their locks). Returns how many."""


class JobLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock without waiting; True if this process holds it now (also when it
        already did)."""

    def held(self) -> bool:
        """Whether this process still holds it (a lost database connection loses it)."""

    def release(self) -> None:
        """Give it up (nothing if not held)."""
