"""The per-blob row (``blobs``) every path that adds a reference to a blob goes through, inside
its own transaction, so that it and the garbage collector exclude each other.

The rule that makes online collection safe: a reference to a blob (a link into a repository, a
manifest listing it) is only ever added in a transaction that holds a lock on the blob's row and
sees it ``live``; the collector only marks a row ``deleting`` in a transaction that holds the
row's exclusive lock and sees no reference and no recent upload. On PostgreSQL the locks are row
locks (``FOR SHARE`` for references, so pushes sharing base layers don't queue behind each other;
``FOR UPDATE`` for the collector and for uploads); on SQLite every write transaction is
``BEGIN IMMEDIATE``, so they are serialized anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from cargobay.metadata.database import Database, now
from cargobay.metadata.schema import blobs
from cargobay.ports.maintenance import LIVE


def lock_referenced(c: sa.Connection, db: Database, digests: Iterable[str]) -> dict[str, str]:
    """Share-lock the rows of ``digests`` (in digest order: no deadlocks) until the transaction
    ends; returns each found row's state. A digest without a row is not stored."""
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    stmt = sa.select(blobs.c.digest, blobs.c.state).where(blobs.c.digest.in_(wanted))
    stmt = stmt.order_by(blobs.c.digest)
    if db.dialect == "postgresql":
        stmt = stmt.with_for_update(read=True)
    return {r.digest: r.state for r in c.execute(stmt)}


def pin(c: sa.Connection, db: Database, digest: str, size: int) -> bool:
    """Record that these bytes are being uploaded now (``touched_at``), creating the row if
    needed, so the collector leaves them alone for its grace period. False if the collector is
    removing them at this moment (the caller waits and tries again)."""
    at = now()
    c.execute(
        db._insert(blobs)
        .values(digest=digest, size=size, state=LIVE, touched_at=at, created_at=at)
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    stmt = sa.select(blobs.c.state).where(blobs.c.digest == digest)
    if db.dialect == "postgresql":
        stmt = stmt.with_for_update()
    if c.execute(stmt).scalar() != LIVE:
        return False
    c.execute(sa.update(blobs).where(blobs.c.digest == digest).values(touched_at=at, size=size))
    return True
