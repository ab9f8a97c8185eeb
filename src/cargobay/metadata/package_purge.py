"""The purge of deleted content: packages and versions deleted before a date go for good, and blobs
no package links any more are handed to the garbage collector (``unreferenced_blobs``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cargobay.metadata import quota
from cargobay.metadata.database import Database, now, offloaded
from cargobay.metadata.schema import (
    blob_links,
    immutable_tag_rules,
    manifest_refs,
    manifests,
    package_access,
    repositories,
    retention_policies,
    tags,
    unreferenced_blobs,
)
from cargobay.oci.digest import Digest
from cargobay.ports.packages import Purged


@offloaded
class SqlPurge:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def purge(self, before: datetime) -> Purged:
        """Remove packages and versions deleted before ``before`` for good. Blobs no package
        links any more are recorded in ``unreferenced_blobs`` for the garbage collector."""
        with self.db.write() as c:
            package_ids = list(
                c.execute(
                    sa.select(repositories.c.id).where(repositories.c.deleted_at < before)
                ).scalars()
            )
            candidates: set[str] = set()
            # Namespaces whose usage this purge lowers: recounted before it commits.
            touched = set(
                c.execute(
                    sa.select(repositories.c.owner_id).where(
                        sa.or_(
                            repositories.c.deleted_at < before,
                            repositories.c.id.in_(
                                sa.select(manifests.c.repository_id).where(
                                    manifests.c.deleted_at < before
                                )
                            ),
                        )
                    )
                ).scalars()
            )
            # Locked first (as links and unlinks lock them before touching a link): no deadlock.
            for owner_id in sorted(o for o in touched if o is not None):
                quota.lock(c, self.db, owner_id)
            for package_id in package_ids:
                candidates |= set(
                    c.execute(
                        sa.select(blob_links.c.digest).where(
                            blob_links.c.repository_id == package_id
                        )
                    ).scalars()
                )
                ids = list(
                    c.execute(
                        sa.select(manifests.c.id).where(manifests.c.repository_id == package_id)
                    ).scalars()
                )
                self._drop_manifests(c, ids)
                c.execute(sa.delete(blob_links).where(blob_links.c.repository_id == package_id))
                c.execute(sa.delete(tags).where(tags.c.repository_id == package_id))
                c.execute(
                    sa.delete(package_access).where(package_access.c.repository_id == package_id)
                )
                c.execute(
                    sa.delete(immutable_tag_rules).where(
                        immutable_tag_rules.c.repository_id == package_id
                    )
                )
                c.execute(
                    sa.delete(retention_policies).where(
                        retention_policies.c.repository_id == package_id
                    )
                )
                c.execute(sa.delete(repositories).where(repositories.c.id == package_id))
            versions = c.execute(
                sa.select(manifests.c.id, manifests.c.repository_id).where(
                    manifests.c.deleted_at < before
                )
            ).all()
            by_package: dict[int, list[int]] = {}
            for v in versions:
                by_package.setdefault(v.repository_id, []).append(v.id)
            for package_id, ids in by_package.items():
                digests = set(
                    c.execute(
                        sa.select(manifest_refs.c.digest).where(
                            manifest_refs.c.manifest_id.in_(ids), manifest_refs.c.kind == "blob"
                        )
                    ).scalars()
                )
                self._drop_manifests(c, ids)
                still_used = set(
                    c.execute(
                        sa.select(manifest_refs.c.digest)
                        .join(manifests, manifests.c.id == manifest_refs.c.manifest_id)
                        .where(
                            manifests.c.repository_id == package_id,
                            manifest_refs.c.digest.in_(digests),
                        )
                    ).scalars()
                )
                unused = digests - still_used
                if unused:
                    c.execute(
                        sa.delete(blob_links).where(
                            blob_links.c.repository_id == package_id,
                            blob_links.c.digest.in_(unused),
                        )
                    )
                candidates |= unused
            linked = set(
                c.execute(
                    sa.select(blob_links.c.digest).where(blob_links.c.digest.in_(candidates))
                ).scalars()
            )
            unreferenced = sorted(candidates - linked)
            quota.recount(c, self.db, touched)
            at = now()
            for digest in unreferenced:
                c.execute(
                    self.db._insert(unreferenced_blobs)
                    .values(digest=digest, since=at)
                    .on_conflict_do_nothing(index_elements=["digest"])
                )
            return Purged(len(package_ids), len(versions), tuple(Digest(d) for d in unreferenced))

    @staticmethod
    def _drop_manifests(c: sa.Connection, ids: list[int]) -> None:
        if not ids:
            return
        c.execute(sa.delete(tags).where(tags.c.manifest_id.in_(ids)))
        c.execute(sa.delete(manifest_refs).where(manifest_refs.c.manifest_id.in_(ids)))
        c.execute(sa.delete(manifests).where(manifests.c.id.in_(ids)))

    async def unreferenced(self) -> list[Digest]:
        with self.db.read() as c:
            return [Digest(d) for d in c.execute(sa.select(unreferenced_blobs.c.digest)).scalars()]
