"""SQL side of the garbage collector: which blobs nothing references, and the transactions that
claim them for deletion under the blob rows' locks (see :mod:`cargobay.metadata.blobrows`).

A blob is referenced while a repository links it or any manifest row lists it: active versions,
index children, referrers (signatures, SBOMs, attestations) and deleted versions still in their
restore window all have manifest rows until they are purged. Candidates are the blobs purge and
unlink recorded in ``unreferenced_blobs`` and any ``live`` row without a reference (found once,
then given the same grace period).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa

from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.schema import blob_links, blobs, manifest_refs, unreferenced_blobs
from cargobay.ports.maintenance import DELETING, LIVE, Claimed

#: Any fixed number: the PostgreSQL advisory lock of the one collector running at a time.
_ADVISORY_KEY = 0x636172676F6763


def _referenced(c: sa.Connection, digests: Sequence[str]) -> set[str]:
    if not digests:
        return set()
    linked = sa.select(blob_links.c.digest).where(blob_links.c.digest.in_(digests))
    listed = sa.select(manifest_refs.c.digest).where(
        manifest_refs.c.kind == "blob", manifest_refs.c.digest.in_(digests)
    )
    return set(c.execute(sa.union(linked, listed)).scalars())


@offloaded
class SqlGcStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        """One collector at a time (across processes and replicas): yields False if another
        one holds the lock. Released when the block ends or the process dies."""
        if self.db.dialect == "postgresql":
            with self.db.engine.connect() as c:
                got = bool(
                    c.execute(sa.select(sa.func.pg_try_advisory_lock(_ADVISORY_KEY))).scalar()
                )
                c.commit()
                try:
                    yield got
                finally:
                    if got:
                        c.execute(sa.select(sa.func.pg_advisory_unlock(_ADVISORY_KEY)))
                        c.commit()
            return
        path = f"{self.db.engine.url.database}.gc-lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    async def deleting(self) -> list[tuple[str, int]]:
        """Blobs a collector claimed but did not finish removing (it crashed or was stopped)."""
        with self.db.read() as c:
            rows = c.execute(
                sa.select(blobs.c.digest, blobs.c.size).where(blobs.c.state == DELETING)
            )
            return [(r.digest, int(r.size)) for r in rows]

    async def forget(self, digests: Sequence[str]) -> None:
        """The bytes of these ``deleting`` blobs are gone: drop their rows."""
        if not digests:
            return
        with self.db.write() as c:
            c.execute(
                sa.delete(blobs).where(blobs.c.digest.in_(list(digests)), blobs.c.state == DELETING)
            )

    def _unreferenced_rows(self, cutoff: datetime) -> sa.Select[tuple[str]]:
        return sa.select(blobs.c.digest).where(
            blobs.c.state == LIVE,
            blobs.c.touched_at < cutoff,
            ~sa.exists().where(blob_links.c.digest == blobs.c.digest),
            ~sa.exists().where(
                manifest_refs.c.digest == blobs.c.digest, manifest_refs.c.kind == "blob"
            ),
            ~sa.exists().where(unreferenced_blobs.c.digest == blobs.c.digest),
        )

    async def discover(self, cutoff: datetime, *, dry_run: bool) -> int:
        """Record blobs nothing references (and not uploaded since ``cutoff``) as candidates;
        their grace period starts now. Returns how many."""
        if dry_run:
            with self.db.read() as c:
                query = self._unreferenced_rows(cutoff).subquery()
                return int(c.execute(sa.select(sa.func.count()).select_from(query)).scalar_one())
        with self.db.write() as c:
            found = list(c.execute(self._unreferenced_rows(cutoff)).scalars())
            at = now()
            for start in range(0, len(found), 1000):
                c.execute(
                    self.db._insert(unreferenced_blobs)
                    .values([{"digest": d, "since": at} for d in found[start : start + 1000]])
                    .on_conflict_do_nothing(index_elements=["digest"])
                )
            return len(found)

    async def candidates(self, cutoff: datetime, after: str, limit: int) -> list[str]:
        """Candidates recorded before ``cutoff``, in digest order after ``after``."""
        with self.db.read() as c:
            return list(
                c.execute(
                    sa.select(unreferenced_blobs.c.digest)
                    .where(unreferenced_blobs.c.since < cutoff, unreferenced_blobs.c.digest > after)
                    .order_by(unreferenced_blobs.c.digest)
                    .limit(limit)
                ).scalars()
            )

    async def claim(self, digests: Sequence[str], cutoff: datetime, *, dry_run: bool) -> Claimed:
        """Re-check candidates under their rows' exclusive locks and mark those still
        unreferenced ``deleting`` (committed before any byte is touched). Rows another
        transaction holds right now are in use: skipped, tried again next run. Candidates that
        are referenced again are dropped; recently uploaded ones stay candidates."""
        with self.db.read() if dry_run else self.db.write() as c:
            stmt = (
                sa.select(blobs.c.digest, blobs.c.size, blobs.c.state, blobs.c.touched_at)
                .where(blobs.c.digest.in_(list(digests)))
                .order_by(blobs.c.digest)
            )
            if self.db.dialect == "postgresql" and not dry_run:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = {r.digest: r for r in c.execute(stmt)}
            if self.db.dialect == "postgresql" and not dry_run:
                # Rows locked by someone else were skipped: they are in use right now.
                present = set(
                    c.execute(
                        sa.select(blobs.c.digest).where(blobs.c.digest.in_(list(digests)))
                    ).scalars()
                )
                busy = present - set(rows)
            else:
                busy = set()
            referenced = _referenced(c, list(digests))
            deleting: list[tuple[str, int]] = []
            drop: list[str] = []
            in_use = recent = 0
            for digest in digests:
                row = rows.get(digest)
                if digest in busy:
                    in_use += 1
                elif digest in referenced:
                    in_use += 1
                    drop.append(digest)
                elif row is not None and aware(row.touched_at) >= cutoff:
                    recent += 1
                else:
                    deleting.append((digest, int(row.size) if row is not None else 0))
            if dry_run:
                return Claimed(deleting, in_use, recent)
            locked = [d for d, _ in deleting if d in rows]
            missing = [d for d, _ in deleting if d not in rows]
            at = now()
            inserted: set[str] = set()
            if missing:
                # Candidates from before blob rows existed: claimed by creating the row, unless
                # an upload created it first (then it is that upload's, and left alone).
                inserted = set(
                    c.execute(
                        self.db._insert(blobs)
                        .values(
                            [
                                {"digest": d, "size": 0, "state": DELETING}
                                | {"touched_at": at, "created_at": at}
                                for d in missing
                            ]
                        )
                        .on_conflict_do_nothing(index_elements=["digest"])
                        .returning(blobs.c.digest)
                    ).scalars()
                )
            if locked:
                c.execute(
                    sa.update(blobs)
                    .where(blobs.c.digest.in_(locked), blobs.c.state == LIVE)
                    .values(state=DELETING)
                )
            deleting = [(d, size) for d, size in deleting if d in rows or d in inserted]
            claimed = [d for d, _ in deleting]
            if claimed or drop:
                c.execute(
                    sa.delete(unreferenced_blobs).where(
                        unreferenced_blobs.c.digest.in_(claimed + drop)
                    )
                )
            return Claimed(deleting, in_use, recent)

    async def known(self, digests: Sequence[str]) -> set[str]:
        """Which of ``digests`` have a row (the metadata knows them)."""
        with self.db.read() as c:
            return set(
                c.execute(
                    sa.select(blobs.c.digest).where(blobs.c.digest.in_(list(digests)))
                ).scalars()
            )

    async def claim_orphans(self, sizes: dict[str, int]) -> list[str]:
        """Bytes the metadata doesn't know (no row, no reference): claimed by creating their
        row ``deleting``, unless an upload created it first. Returns the claimed digests."""
        with self.db.write() as c:
            referenced = _referenced(c, list(sizes))
            at = now()
            values = [
                {"digest": d, "size": size, "state": DELETING, "touched_at": at, "created_at": at}
                for d, size in sorted(sizes.items())
                if d not in referenced
            ]
            if not values:
                return []
            claimed = list(
                c.execute(
                    self.db._insert(blobs)
                    .values(values)
                    .on_conflict_do_nothing(index_elements=["digest"])
                    .returning(blobs.c.digest)
                ).scalars()
            )
            return claimed
