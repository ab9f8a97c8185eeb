"""Per-namespace usage counters and quotas (``namespace_usage``).

What counts: each blob linked into any of the namespace's packages, once (a layer shared by
ten packages of ``acme`` counts once for ``acme``), plus the bytes of every manifest row of its
packages (deleted versions in their restore window included, until purged). That is the
``stored`` figure of :mod:`cargobay.metadata.usage`, kept as a counter so a push is checked
against the quota without summing anything.

The counter changes only inside the transactions that change what it counts: a blob linked
(upload commit, mount) or unlinked, a manifest row added, a purge. Each of them locks the
namespace's row first (``FOR UPDATE`` on PostgreSQL; SQLite write transactions are serialized),
then decides whether the blob is new to the namespace, then writes: so two pushes racing into
one namespace can't both see room for their bytes, nor both count (or both uncount) one
blob. Bulk removals (purge) recount the namespaces they touched in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from cargobay.errors import QuotaExceeded
from cargobay.metadata.database import Database, now, offloaded
from cargobay.metadata.outbox import append
from cargobay.metadata.schema import accounts, namespace_usage, repositories
from cargobay.ports.events import Action, Actor, Event
from cargobay.ports.quota import NamespaceQuota, warning_threshold

_MEASURE = """
SELECT
  (SELECT COALESCE(SUM(size), 0) FROM (
     SELECT l.digest, MAX(l.size) AS size FROM blob_links l
     JOIN repositories r ON r.id = l.repository_id WHERE r.owner_id = :owner
     GROUP BY l.digest) AS distinct_blobs)
  + (SELECT COALESCE(SUM(m.size), 0) FROM manifests m
     JOIN repositories r ON r.id = m.repository_id WHERE r.owner_id = :owner)
"""

_AS_LARGE_IN_NAMESPACE = (
    "SELECT 1 FROM blob_links l JOIN repositories r ON r.id = l.repository_id"
    " WHERE l.size >= :size AND r.owner_id = :owner LIMIT 1"
)

_IN_NAMESPACE = (
    "SELECT 1 FROM blob_links l JOIN repositories r ON r.id = l.repository_id"
    " WHERE l.digest = :digest AND r.owner_id = :owner LIMIT 1"
)


def owner_of(c: sa.Connection, repository_id: int) -> int | None:
    """The namespace (account id) a repository belongs to, if any."""
    value = c.execute(
        sa.select(repositories.c.owner_id).where(repositories.c.id == repository_id)
    ).scalar()
    return None if value is None else int(value)


def lock(c: sa.Connection, db: Database, owner_id: int) -> NamespaceQuota:
    """The namespace's row, created if missing, locked until the transaction ends (``login``
    is left empty: it is read only for a refusal's message)."""
    stmt = sa.select(
        namespace_usage.c.used, namespace_usage.c.quota, namespace_usage.c.warn_percent
    ).where(namespace_usage.c.owner_id == owner_id)
    if db.dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = c.execute(stmt).first()
    if row is None:
        c.execute(
            db._insert(namespace_usage)
            .values(owner_id=owner_id, used=0, updated_at=now())
            .on_conflict_do_nothing(index_elements=["owner_id"])
        )
        row = c.execute(stmt).one()
    return NamespaceQuota(
        owner_id,
        "",
        int(row.used),
        None if row.quota is None else int(row.quota),
        row.warn_percent,
    )


def links_blob(c: sa.Connection, owner_id: int, digest: str) -> bool:
    """Whether any package of the namespace links ``digest`` already."""
    found = c.execute(sa.text(_IN_NAMESPACE), {"digest": digest, "owner": owner_id}).first()
    return found is not None


def adds(c: sa.Connection, owner_id: int, digest: str | None, size: int) -> int:
    """The bytes storing a blob of ``size`` adds to the namespace: none if one of its packages
    links the blob already (each blob counts once). The commit knows ``digest``; an upload's
    chunk does not (None: ``size`` is what was sent so far), so it adds nothing yet if the
    namespace links any blob at least that large: the bytes may turn out to be that one."""
    if digest is not None:
        return 0 if links_blob(c, owner_id, digest) else size
    found = c.execute(sa.text(_AS_LARGE_IN_NAMESPACE), {"size": size, "owner": owner_id}).first()
    return 0 if found is not None else size


def refuse_over(c: sa.Connection, row: NamespaceQuota, adds: int) -> None:
    """Raise QuotaExceeded if ``adds`` more bytes would take the namespace past its quota."""
    if row.quota is not None and adds > 0 and row.used + adds > row.quota:
        login = (
            row.login
            or c.execute(
                sa.select(accounts.c.login).where(accounts.c.id == row.owner_id)
            ).scalar_one()
        )
        raise QuotaExceeded(login, used=row.used, limit=row.quota, adds=adds)


def charge(c: sa.Connection, row: NamespaceQuota, delta: int, *, enforce: bool = True) -> None:
    """Add ``delta`` bytes (negative: freed) to the locked ``row``'s counter. With ``enforce``
    a growth past the quota raises QuotaExceeded (the caller's transaction rolls back). A
    growth that crosses the warning threshold appends a ``registry.quota_warning`` event."""
    if delta == 0:
        return
    if enforce:
        refuse_over(c, row, delta)
    c.execute(
        sa.update(namespace_usage)
        .where(namespace_usage.c.owner_id == row.owner_id)
        .values(used=namespace_usage.c.used + delta, updated_at=now())
    )
    threshold = warning_threshold(row)
    if threshold is not None and row.used < threshold <= row.used + delta:
        append(
            c,
            [
                Event(
                    Action.QUOTA_WARNING,
                    Actor(),
                    owner_id=row.owner_id,
                    data={
                        "used": row.used + delta,
                        "quota": row.quota,
                        "warn_percent": row.warn_percent,
                    },
                )
            ],
        )


def measure(c: sa.Connection, owner_id: int) -> int:
    """What the counter should say, summed from the links and manifests."""
    return int(c.execute(sa.text(_MEASURE), {"owner": owner_id}).scalar_one())


def recount(c: sa.Connection, db: Database, owner_ids: Iterable[int | None]) -> dict[int, int]:
    """Set the namespaces' counters from what they link (in id order: no deadlocks). Returns
    each one's correction (new minus old)."""
    corrections: dict[int, int] = {}
    for owner_id in sorted({o for o in owner_ids if o is not None}):
        row = lock(c, db, owner_id)
        used = measure(c, owner_id)
        if used != row.used:
            c.execute(
                sa.update(namespace_usage)
                .where(namespace_usage.c.owner_id == owner_id)
                .values(used=used, updated_at=now())
            )
        corrections[owner_id] = used - row.used
    return corrections


def _namespace_of(c: sa.Connection, repository: str) -> int | None:
    value = c.execute(
        sa.select(repositories.c.owner_id).where(repositories.c.name == repository)
    ).scalar()
    return None if value is None else int(value)


@offloaded
class SqlQuotaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _read(self, c: sa.Connection, owner_id: int) -> NamespaceQuota | None:
        row = c.execute(
            sa.select(
                accounts.c.login,
                namespace_usage.c.used,
                namespace_usage.c.quota,
                namespace_usage.c.warn_percent,
            )
            .select_from(accounts)
            .outerjoin(namespace_usage, namespace_usage.c.owner_id == accounts.c.id)
            .where(accounts.c.id == owner_id)
        ).first()
        if row is None:
            return None
        return NamespaceQuota(
            owner_id,
            row.login,
            int(row.used or 0),  # no row yet: nothing was ever linked
            None if row.quota is None else int(row.quota),
            row.warn_percent,
        )

    async def get(self, owner_id: int) -> NamespaceQuota | None:
        """The namespace's counter and quota; None if there is no such account."""
        with self.db.read() as c:
            return self._read(c, owner_id)

    async def for_repository(self, repository: str) -> NamespaceQuota | None:
        """The counter and quota of the namespace ``repository`` belongs to, if any."""
        with self.db.read() as c:
            owner_id = _namespace_of(c, repository)
            return None if owner_id is None else self._read(c, owner_id)

    async def precheck(self, repository: str, digest: str | None, size: int) -> None:
        """Raise QuotaExceeded if storing ``size`` more bytes (of blob ``digest``, if known)
        would pass the namespace's quota, counted as the commit counts them (:func:`adds`). A
        cheap early refusal without locks; the commit checks again under the namespace's
        lock."""
        with self.db.read() as c:
            owner_id = _namespace_of(c, repository)
            if owner_id is None:
                return
            row = self._read(c, owner_id)
            if row is None or row.quota is None:
                return
            refuse_over(c, row, adds(c, owner_id, digest, size))

    async def set_quota(self, owner_id: int, quota: int | None, warn_percent: int | None) -> None:
        """Set (or with None, remove) the namespace's quota and warning threshold."""
        with self.db.write() as c:
            lock(c, self.db, owner_id)
            c.execute(
                sa.update(namespace_usage)
                .where(namespace_usage.c.owner_id == owner_id)
                .values(quota=quota, warn_percent=warn_percent, updated_at=now())
            )

    async def recount(self, owner_ids: list[int] | None = None) -> dict[int, int]:
        """Set the counters of ``owner_ids`` (None: every account) from what they link;
        returns each one's correction. Safe while pushes go on (each under its row's lock)."""
        if owner_ids is None:
            with self.db.read() as c:
                owner_ids = list(c.execute(sa.select(accounts.c.id)).scalars())
        corrections: dict[int, int] = {}
        for owner_id in owner_ids:  # one short transaction each
            with self.db.write() as c:
                corrections |= recount(c, self.db, [owner_id])
        return corrections
