"""SQL store for retention policies, and the cleanup itself: the plan
(:mod:`.retention_plan`) is made and carried out in one transaction.

Safety under concurrent pushes: the cleanup plans, locks the rows of the versions it would
remove (``FOR UPDATE`` on PostgreSQL; SQLite serializes write transactions anyway), plans again
and removes only what both plans remove. A manifest PUT share-locks the children it lists and
locks the row of the version it pushes (before it tags it), so neither can start using a
version between the second plan and the commit; a version one of them took meanwhile is in
neither lock nor plan, and a version the cleanup removed first is restored by the push.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa

from cargobay.metadata import immutability
from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.manifests import delete_versions
from cargobay.metadata.outbox import append
from cargobay.metadata.retention_plan import Inputs, TagRow, VersionRow, plan
from cargobay.metadata.schema import (
    manifest_refs,
    manifests,
    repositories,
    retention_policies,
    tags,
)
from cargobay.ports.events import Event
from cargobay.ports.retention import Removal, RetentionPolicy

__all__ = ["Removal", "RetentionPolicy", "SqlRetentionStore"]


def _policy(row: sa.Row[tuple[object, ...]] | None) -> RetentionPolicy | None:
    if row is None:
        return None
    return RetentionPolicy(
        untagged_days=row.untagged_days,
        keep_tags=row.keep_tags,
        tag_patterns=tuple(row.tag_patterns or ()),
        pulled_days=row.pulled_days,
    )


def _where(owner_id: int | None, package_id: int | None) -> sa.ColumnElement[bool]:
    if package_id is not None:
        return retention_policies.c.repository_id == package_id
    return retention_policies.c.owner_id == owner_id


@offloaded
class SqlRetentionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- policies -------------------------------------------------------------------------------

    async def get(
        self, *, owner_id: int | None = None, package_id: int | None = None
    ) -> RetentionPolicy | None:
        """The policy set on a package, or on a user or organization; None if none is."""
        with self.db.read() as c:
            return _policy(
                c.execute(sa.select(retention_policies).where(_where(owner_id, package_id))).first()
            )

    async def put(
        self,
        policy: RetentionPolicy,
        *,
        owner_id: int | None = None,
        package_id: int | None = None,
    ) -> None:
        values = {
            "untagged_days": policy.untagged_days,
            "keep_tags": policy.keep_tags,
            "tag_patterns": list(policy.tag_patterns),
            "pulled_days": policy.pulled_days,
            "updated_at": now(),
        }
        with self.db.write() as c:
            done = c.execute(
                sa.update(retention_policies).where(_where(owner_id, package_id)).values(values)
            )
            if done.rowcount == 0:
                c.execute(
                    sa.insert(retention_policies).values(
                        owner_id=owner_id if package_id is None else None,
                        repository_id=package_id,
                        **values,
                    )
                )

    async def clear(self, *, owner_id: int | None = None, package_id: int | None = None) -> bool:
        with self.db.write() as c:
            done = c.execute(sa.delete(retention_policies).where(_where(owner_id, package_id)))
            return done.rowcount > 0

    async def governed(self) -> list[int]:
        """Packages (not deleted) with a policy of their own or of their owner."""
        with self.db.read() as c:
            own = sa.select(retention_policies.c.repository_id).where(
                retention_policies.c.repository_id.is_not(None)
            )
            owners = sa.select(retention_policies.c.owner_id).where(
                retention_policies.c.owner_id.is_not(None)
            )
            return list(
                c.execute(
                    sa.select(repositories.c.id)
                    .where(
                        repositories.c.deleted_at.is_(None),
                        sa.or_(repositories.c.id.in_(own), repositories.c.owner_id.in_(owners)),
                    )
                    .order_by(repositories.c.id)
                ).scalars()
            )

    # -- the cleanup ----------------------------------------------------------------------------

    async def preview(
        self,
        package_id: int,
        policy: RetentionPolicy,
        matches: Callable[[str], bool],
        protected_downloads: int | None,
        at: datetime,
    ) -> list[Removal]:
        """What :meth:`apply` would remove now; changes nothing."""
        with self.db.read() as c:
            return plan(policy, _inputs(c, package_id, matches, protected_downloads), at)

    async def apply(
        self,
        package_id: int,
        policy: RetentionPolicy,
        matches: Callable[[str], bool],
        protected_downloads: int | None,
        at: datetime,
        events: Callable[[Sequence[Removal]], Sequence[Event]],
    ) -> list[Removal]:
        """Remove what the policy removes (ordinary soft deletions, restorable for the restore
        window), with ``events(removed)`` in the same transaction. Returns what was removed."""
        with self.db.write() as c:
            first = plan(policy, _inputs(c, package_id, matches, protected_downloads), at)
            if not first:
                return []
            ids = [r.id for r in first]
            if self.db.dialect == "postgresql":
                c.execute(
                    sa.select(manifests.c.id)
                    .where(manifests.c.id.in_(ids))
                    .order_by(manifests.c.id)
                    .with_for_update()
                ).all()
            again = plan(policy, _inputs(c, package_id, matches, protected_downloads), at)
            locked = set(ids)
            removed = [r for r in again if r.id in locked]
            if not removed:
                return []
            deleted = set(delete_versions(c, package_id, [r.id for r in removed], exact=True))
            removed = [r for r in removed if r.id in deleted]
            append(c, events(removed))
            return removed


def _inputs(
    c: sa.Connection,
    package_id: int,
    matches: Callable[[str], bool],
    protected_downloads: int | None,
) -> Inputs:
    active = sa.and_(manifests.c.repository_id == package_id, manifests.c.deleted_at.is_(None))
    versions = [
        VersionRow(
            id=r.id,
            digest=r.digest,
            subject=r.subject,
            kind=r.kind or "image",
            pushed_at=aware(r.updated_at or r.created_at),
            last_pulled_at=aware(r.last_pulled_at) if r.last_pulled_at else None,
            download_count=int(r.download_count),
        )
        for r in c.execute(
            sa.select(
                manifests.c.id,
                manifests.c.digest,
                manifests.c.subject,
                manifests.c.kind,
                manifests.c.created_at,
                manifests.c.updated_at,
                manifests.c.last_pulled_at,
                manifests.c.download_count,
            ).where(active)
        )
    ]
    tag_rows = [
        TagRow(r.name, r.manifest_id, aware(r.updated_at))
        for r in c.execute(
            sa.select(tags.c.name, tags.c.manifest_id, tags.c.updated_at).where(
                tags.c.repository_id == package_id
            )
        )
    ]
    listings = [
        (r.manifest_id, r.digest)
        for r in c.execute(
            sa.select(manifest_refs.c.manifest_id, manifest_refs.c.digest)
            .join(manifests, manifests.c.id == manifest_refs.c.manifest_id)
            .where(active, manifest_refs.c.kind == "manifest")
        )
    ]
    patterns = immutability.patterns(c, package_id)
    return Inputs(
        versions=versions,
        tags=tag_rows,
        listings=listings,
        immutable=lambda tag: any(fnmatch.fnmatchcase(tag, p) for p in patterns),
        matches=matches,
        protected_downloads=protected_downloads,
    )
