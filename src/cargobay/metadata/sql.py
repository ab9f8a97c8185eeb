"""SQL implementation of the metadata stores (SQLite and PostgreSQL through SQLAlchemy Core):
repositories, blob links and uploads here; manifests in :mod:`.manifests`; accounts, tokens and
package access in :mod:`.accounts`; packages in :mod:`.packages`. :class:`SqlMetadata` builds
them all over one engine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from limits.aio.storage import Storage

from cargobay.errors import TooManyUploads, Unavailable
from cargobay.metadata import blobrows, quota
from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.manifests import SqlManifestStore
from cargobay.metadata.schema import (
    PUBLISHED,
    blob_links,
    manifests,
    repositories,
    unreferenced_blobs,
    uploads,
)
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName
from cargobay.ports.maintenance import LIVE
from cargobay.ports.registry import Upload


def _first_int(row: Sequence[Any]) -> int:
    return int(row[0])


_LINKED_SIZE = (
    "SELECT l.size FROM blob_links l JOIN repositories r ON r.id = l.repository_id"
    " WHERE r.name = :repository AND l.digest = :digest"
)


@offloaded
class SqlRepositoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def exists(self, name: RepositoryName) -> bool:
        with self.db.read() as c:
            return self.db.repository_id(c, name) is not None

    async def list_names(self, *, last: str | None, limit: int) -> list[RepositoryName]:
        name = self.db.bytewise(repositories.c.name)
        stmt = sa.select(repositories.c.name).where(PUBLISHED).order_by(name).limit(limit)
        if last is not None:
            stmt = stmt.where(name > last)
        with self.db.read() as c:
            return [RepositoryName(n) for n in c.execute(stmt).scalars()]


@offloaded
class SqlBlobLinkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def linked_size(self, repository: RepositoryName, digest: Digest) -> int | None:
        params = {"repository": repository, "digest": digest}
        return self.db.fetch_one(_LINKED_SIZE, params, _first_int)

    async def link(self, repository: RepositoryName, digest: Digest, size: int) -> None:
        with self.db.write() as c:
            state = blobrows.lock_referenced(c, self.db, [digest]).get(digest)
            if state is None:
                blobrows.pin(c, self.db, digest, size)
            elif state != LIVE:
                raise Unavailable("the blob was being removed as it was stored; push it again")
            self._insert_link(c, repository, digest, size)

    def _insert_link(
        self, c: sa.Connection, repository: RepositoryName, digest: Digest, size: int
    ) -> None:
        repository_id = self.db.ensure_repository(c, repository)
        owner_id = quota.owner_of(c, repository_id)
        # The namespace's row first: whether the blob is new to it, and the room for it, are
        # decided by one transaction at a time.
        namespace = quota.lock(c, self.db, owner_id) if owner_id is not None else None
        adds = 0 if namespace is None else quota.adds(c, namespace.owner_id, digest, size)
        inserted = c.execute(
            self.db._insert(blob_links)
            .values(repository_id=repository_id, digest=digest, size=size, created_at=now())
            .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
        ).rowcount
        if namespace is not None and inserted:
            quota.charge(c, namespace, adds)
        # Linked again: if it becomes garbage later, its grace period starts then.
        c.execute(sa.delete(unreferenced_blobs).where(unreferenced_blobs.c.digest == digest))

    async def pin(self, digest: Digest, size: int) -> bool:
        with self.db.write() as c:
            return blobrows.pin(c, self.db, digest, size)

    async def mount(
        self, repository: RepositoryName, digest: Digest, source: RepositoryName
    ) -> int | None:
        with self.db.write() as c:
            states = blobrows.lock_referenced(c, self.db, [digest])
            size = c.execute(
                sa.text(_LINKED_SIZE), {"repository": source, "digest": digest}
            ).scalar()
            if size is None or states.get(digest) != LIVE:
                return None
            self._insert_link(c, repository, digest, int(size))
            return int(size)

    async def unlink(self, repository: RepositoryName, digest: Digest) -> bool:
        with self.db.write() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return False
            owner_id = quota.owner_of(c, repository_id)
            namespace = quota.lock(c, self.db, owner_id) if owner_id is not None else None
            size = c.execute(
                sa.select(blob_links.c.size).where(
                    blob_links.c.repository_id == repository_id, blob_links.c.digest == digest
                )
            ).scalar()
            result = c.execute(
                sa.delete(blob_links).where(
                    blob_links.c.repository_id == repository_id, blob_links.c.digest == digest
                )
            )
            if (
                namespace is not None
                and size is not None
                and result.rowcount
                and not quota.links_blob(c, namespace.owner_id, digest)
            ):
                quota.charge(c, namespace, -int(size), enforce=False)
            if (
                result.rowcount
                and not c.execute(
                    sa.select(blob_links.c.digest).where(blob_links.c.digest == digest).limit(1)
                ).first()
            ):
                # No repository links it any more: a candidate for the garbage collector,
                # which re-checks every reference before it removes anything.
                c.execute(
                    self.db._insert(unreferenced_blobs)
                    .values(digest=digest, since=now())
                    .on_conflict_do_nothing(index_elements=["digest"])
                )
            return result.rowcount > 0


@offloaded
class SqlUploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        upload_id: str,
        repository: RepositoryName,
        *,
        owner: str = "",
        limit: int | None = None,
        live_since: datetime | None = None,
    ) -> Upload:
        at = now()
        since = live_since or datetime.min.replace(tzinfo=at.tzinfo)
        with self.db.write() as c:
            if limit is not None:
                # SQLite writers are serialised (BEGIN IMMEDIATE); PostgreSQL ones of one owner
                # take a lock held until commit, so racing workers and replicas can't overshoot.
                if self.db.dialect == "postgresql":
                    c.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(owner))))
                live = sa.and_(uploads.c.owner == owner, uploads.c.touched_at >= since)
                count, oldest = c.execute(
                    sa.select(sa.func.count(), sa.func.min(uploads.c.touched_at)).where(live)
                ).one()
                if count >= limit:
                    wait = (aware(oldest) - since).total_seconds() if oldest else 1.0
                    raise TooManyUploads(limit=limit, retry_after=max(1, math.ceil(wait)))
            c.execute(
                sa.insert(uploads).values(
                    id=upload_id, repository=repository, started_at=at, touched_at=at, owner=owner
                )
            )
        return Upload(upload_id, repository, at, at)

    async def get(self, upload_id: str) -> Upload | None:
        with self.db.read() as c:
            row = c.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
        if row is None:
            return None
        return Upload(
            row.id, RepositoryName(row.repository), aware(row.started_at), aware(row.touched_at)
        )

    async def touch(self, upload_id: str) -> None:
        with self.db.write() as c:
            c.execute(sa.update(uploads).where(uploads.c.id == upload_id).values(touched_at=now()))

    async def delete(self, upload_id: str) -> None:
        with self.db.write() as c:
            c.execute(sa.delete(uploads).where(uploads.c.id == upload_id))

    async def expired(self, before: datetime) -> list[str]:
        with self.db.read() as c:
            return list(
                c.execute(sa.select(uploads.c.id).where(uploads.c.touched_at < before)).scalars()
            )


class SqlMetadata:
    """All SQL stores over one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        db = Database(engine)
        self._db = db
        self.engine = engine
        self.repositories = SqlRepositoryStore(db)
        self.blobs = SqlBlobLinkStore(db)
        self.manifests = SqlManifestStore(db)
        self.uploads = SqlUploadStore(db)
        from cargobay.metadata.accounts import (
            SqlAccountStore,
            SqlPackageAccessStore,
            SqlSessionStore,
            SqlTokenStore,
        )
        from cargobay.metadata.fsck import SqlFsckStore
        from cargobay.metadata.gc import SqlGcStore
        from cargobay.metadata.immutability import SqlImmutableTagStore
        from cargobay.metadata.outbox import SqlEventLog
        from cargobay.metadata.packages import SqlPackageStore
        from cargobay.metadata.quota import SqlQuotaStore
        from cargobay.metadata.retention import SqlRetentionStore
        from cargobay.metadata.trust import SqlTrustStore
        from cargobay.metadata.usage import SqlUsageStore

        self.accounts = SqlAccountStore(db)
        self.tokens = SqlTokenStore(db)
        self.packages = SqlPackageAccessStore(db)
        self.package_records = SqlPackageStore(db)
        self.sessions = SqlSessionStore(db)
        self.gc = SqlGcStore(db)
        self.fsck = SqlFsckStore(db)
        self.immutable = SqlImmutableTagStore(db)
        self.retention = SqlRetentionStore(db)
        self.usage = SqlUsageStore(db)
        self.quotas = SqlQuotaStore(db)
        self.trust = SqlTrustStore(db)
        self.events = SqlEventLog(db)
        from cargobay.metadata.webhooks import SqlWebhookStore

        self.webhooks = SqlWebhookStore(db)

    def failure_storage(self) -> Storage:
        """A ``limits`` storage counting failed sign-ins in this database, shared by every
        process on it (:class:`~cargobay.metadata.failures.SqlFailureStorage`)."""
        from cargobay.metadata.failures import SqlFailureStorage

        return SqlFailureStorage(self._db)

    def ping(self) -> None:
        """Raise Unavailable unless the database answers."""
        self._db.ping()

    def counts(self) -> dict[str, int]:
        """How many blobs (distinct digests linked), active versions and open uploads; the
        webhook backlog."""
        from cargobay.metadata.webhooks import webhook_backlog

        with self._db.read() as c:
            return {
                "blobs": int(
                    c.execute(sa.select(sa.func.count(sa.distinct(blob_links.c.digest)))).scalar()
                    or 0
                ),
                "manifests": int(
                    c.execute(
                        sa.select(sa.func.count()).where(manifests.c.deleted_at.is_(None))
                    ).scalar()
                    or 0
                ),
                "uploads": int(
                    c.execute(sa.select(sa.func.count()).select_from(uploads)).scalar() or 0
                ),
                **webhook_backlog(c),
            }

    def close(self) -> None:
        self._db.close()
