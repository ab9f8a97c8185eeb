"""SQL store of a package's versions as people manage them: pages of versions with their tags,
sizes and parents, an index's children, soft deletion and restore (tags that are still free come
back). Values are :class:`~cargobay.ports.packages.VersionRecord`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.manifests import delete_versions, refresh_package_metadata
from cargobay.metadata.outbox import append
from cargobay.metadata.schema import (
    blob_links,
    manifest_refs,
    manifests,
    tags,
)
from cargobay.oci.digest import Digest
from cargobay.ports.events import Event
from cargobay.ports.packages import VersionRecord


@offloaded
class SqlVersionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def versions(
        self, package_id: int, *, deleted: bool, offset: int, limit: int
    ) -> tuple[list[VersionRecord], int]:
        """A page of active (or deleted) versions, newest first, and how many there are."""
        state = manifests.c.deleted_at.is_not(None) if deleted else manifests.c.deleted_at.is_(None)
        where = (manifests.c.repository_id == package_id, state)
        with self.db.read() as c:
            total = c.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
            rows = c.execute(
                sa.select(manifests)
                .where(*where)
                .order_by(manifests.c.created_at.desc(), manifests.c.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return self._versions(c, package_id, rows), int(total)

    async def tags(self, package_id: int) -> list[tuple[str, VersionRecord]]:
        """Every tag with the version it names, most recently moved first."""
        with self.db.read() as c:
            rows = c.execute(
                sa.select(tags.c.name, tags.c.manifest_id)
                .where(tags.c.repository_id == package_id)
                .order_by(tags.c.updated_at.desc(), tags.c.name)
            ).all()
            ids = {r.manifest_id for r in rows}
            versions = {
                v.id: v
                for v in self._versions(
                    c,
                    package_id,
                    c.execute(sa.select(manifests).where(manifests.c.id.in_(ids))).all(),
                )
            }
        return [(r.name, versions[r.manifest_id]) for r in rows if r.manifest_id in versions]

    async def children(self, package_id: int, version_id: int) -> list[VersionRecord]:
        """The manifests an index lists, in its order."""
        with self.db.read() as c:
            digests = list(
                c.execute(
                    sa.select(manifest_refs.c.digest).where(
                        manifest_refs.c.manifest_id == version_id,
                        manifest_refs.c.kind == "manifest",
                    )
                ).scalars()
            )
            rows = c.execute(
                sa.select(manifests).where(
                    manifests.c.repository_id == package_id, manifests.c.digest.in_(digests)
                )
            ).all()
            found = self._versions(c, package_id, rows)
        return sorted(found, key=lambda v: (v.attestation, v.platform or "~"))

    async def version(self, package_id: int, version_id: int) -> VersionRecord | None:
        with self.db.read() as c:
            rows = c.execute(
                sa.select(manifests).where(
                    manifests.c.repository_id == package_id, manifests.c.id == version_id
                )
            ).all()
            found = self._versions(c, package_id, rows)
        return found[0] if found else None

    async def version_by_digest(self, package_id: int, digest: Digest) -> VersionRecord | None:
        with self.db.read() as c:
            rows = c.execute(
                sa.select(manifests).where(
                    manifests.c.repository_id == package_id, manifests.c.digest == digest
                )
            ).all()
            found = self._versions(c, package_id, rows)
        return found[0] if found else None

    def _versions(
        self, c: sa.Connection, package_id: int, rows: Sequence[Any]
    ) -> list[VersionRecord]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        tag_rows = c.execute(
            sa.select(tags.c.manifest_id, tags.c.name)
            .where(tags.c.manifest_id.in_(ids))
            .order_by(self.db.bytewise(tags.c.name))
        ).all()
        tag_map: dict[int, list[str]] = {}
        for t in tag_rows:
            tag_map.setdefault(t.manifest_id, []).append(t.name)
        sizes = self._sizes(c, package_id, ids)
        parents = self._parents(c, package_id, [r.digest for r in rows if r.is_child])
        return [
            VersionRecord(
                id=r.id,
                package_id=package_id,
                digest=Digest(r.digest),
                media_type=r.media_type,
                kind=r.kind or "image",
                size=sizes.get(r.id, int(r.size)),
                platform=r.platform,
                is_child=bool(r.is_child),
                attestation=bool(r.attestation),
                subject=Digest(r.subject) if r.subject else None,
                artifact_type=r.artifact_type,
                tags=tuple(tag_map.get(r.id, ()) if r.deleted_at is None else r.deleted_tags or ()),
                description=r.description,
                license=r.license,
                source_url=r.source_url,
                download_count=int(r.download_count),
                created_at=aware(r.created_at),
                updated_at=aware(r.updated_at or r.created_at),
                deleted_at=aware(r.deleted_at) if r.deleted_at else None,
                parents=tuple(parents.get(r.digest, ())),
            )
            for r in rows
        ]

    @staticmethod
    def _parents(c: sa.Connection, package_id: int, digests: list[str]) -> dict[str, list[Digest]]:
        """The indexes of the package (not deleted) that list each of ``digests``."""
        if not digests:
            return {}
        rows = c.execute(
            sa.select(manifest_refs.c.digest, manifests.c.digest.label("parent"))
            .join(manifests, manifests.c.id == manifest_refs.c.manifest_id)
            .where(
                manifest_refs.c.kind == "manifest",
                manifest_refs.c.digest.in_(digests),
                manifests.c.repository_id == package_id,
                manifests.c.deleted_at.is_(None),
            )
            .order_by(manifests.c.created_at)
        ).all()
        found: dict[str, list[Digest]] = {}
        for row in rows:
            found.setdefault(row.digest, []).append(Digest(row.parent))
        return found

    def _sizes(self, c: sa.Connection, package_id: int, ids: list[int]) -> dict[int, int]:
        """Manifest bytes + referenced blobs + (indexes) children's totals, per version. Only
        the versions asked for and their children are summed."""
        child_rows = c.execute(
            sa.select(manifest_refs.c.manifest_id, manifests.c.id.label("child"))
            .join(manifests, manifests.c.digest == manifest_refs.c.digest)
            .where(
                manifest_refs.c.manifest_id.in_(ids),
                manifest_refs.c.kind == "manifest",
                manifests.c.repository_id == package_id,
            )
        ).all()
        wanted = set(ids) | {r.child for r in child_rows}
        blob_sum = (
            sa.select(manifest_refs.c.manifest_id, sa.func.sum(blob_links.c.size).label("total"))
            .join(
                blob_links,
                sa.and_(
                    blob_links.c.digest == manifest_refs.c.digest,
                    blob_links.c.repository_id == package_id,
                ),
            )
            .where(manifest_refs.c.kind == "blob", manifest_refs.c.manifest_id.in_(wanted))
            .group_by(manifest_refs.c.manifest_id)
            .subquery()
        )
        totals = {
            r.id: int(r.size) + int(r.total or 0)
            for r in c.execute(
                sa.select(manifests.c.id, manifests.c.size, blob_sum.c.total)
                .outerjoin(blob_sum, blob_sum.c.manifest_id == manifests.c.id)
                .where(manifests.c.id.in_(wanted))
            ).all()
        }
        result = {i: totals.get(i, 0) for i in ids}
        for r in child_rows:
            result[r.manifest_id] += totals.get(r.child, 0)
        return result

    async def delete_versions(
        self, package_id: int, ids: Sequence[int], events: Sequence[Event] = ()
    ) -> list[int]:
        """Soft-delete versions (see :func:`cargobay.metadata.manifests.delete_versions`)."""
        with self.db.write() as c:
            deleted = delete_versions(c, package_id, ids)
            append(c, events)
            return deleted

    async def restore_version(
        self, package_id: int, version_id: int, events: Sequence[Event] = ()
    ) -> list[int]:
        """Restore a deleted version and, for an index, every deleted manifest it lists (an
        active index never lists a deleted manifest), with their tags that are still free.
        Returns the ids restored."""
        with self.db.write() as c:
            wanted = [version_id]
            restored: list[int] = []
            at = now()
            while wanted:
                current = wanted.pop()
                row = c.execute(
                    sa.select(manifests.c.id, manifests.c.deleted_tags).where(
                        manifests.c.repository_id == package_id,
                        manifests.c.id == current,
                        manifests.c.deleted_at.is_not(None),
                    )
                ).first()
                if row is None or row.id in restored:
                    continue
                self._restore_tags(c, package_id, row.id, row.deleted_tags or (), at)
                c.execute(
                    sa.update(manifests)
                    .where(manifests.c.id == row.id)
                    .values(deleted_at=None, deleted_tags=None, deleted_with=None, updated_at=at)
                )
                restored.append(row.id)
                wanted += c.execute(
                    sa.select(manifests.c.id)
                    .join(manifest_refs, manifest_refs.c.digest == manifests.c.digest)
                    .where(
                        manifest_refs.c.manifest_id == row.id,
                        manifest_refs.c.kind == "manifest",
                        manifests.c.repository_id == package_id,
                        manifests.c.deleted_at.is_not(None),
                    )
                ).scalars()
            if restored:
                refresh_package_metadata(c, package_id)
                append(c, events)
            return restored

    @staticmethod
    def _restore_tags(
        c: sa.Connection, package_id: int, version_id: int, names: Sequence[str], at: datetime
    ) -> None:
        for name in names:
            taken = c.execute(
                sa.select(tags.c.name).where(
                    tags.c.repository_id == package_id, tags.c.name == name
                )
            ).first()
            if taken is None:
                c.execute(
                    sa.insert(tags).values(
                        repository_id=package_id, name=name, manifest_id=version_id, updated_at=at
                    )
                )

    async def max_downloads(self, package_id: int) -> int:
        with self.db.read() as c:
            value = c.execute(
                sa.select(sa.func.max(manifests.c.download_count)).where(
                    manifests.c.repository_id == package_id
                )
            ).scalar()
        return int(value or 0)
