"""SQL store for manifests, tags and referrers, and the soft deletion of versions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa

from cargobay.errors import ManifestBlobUnknown, ManifestChildUnknown, VersionInUse
from cargobay.metadata import blobrows, immutability, quota
from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.outbox import append
from cargobay.metadata.schema import (
    PUBLISHED,
    blob_links,
    manifest_refs,
    manifests,
    repositories,
    tags,
)
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag
from cargobay.ports.events import Event
from cargobay.ports.registry import Manifest, NewManifest, Referrer, StoredManifest


def _manifest(repository: RepositoryName, row: Sequence[Any]) -> Manifest:
    digest, media_type, size, content, subject, artifact_type, created_at = row
    return Manifest(
        repository=repository,
        digest=Digest(digest),
        media_type=media_type,
        size=int(size),
        content=bytes(content),
        subject=Digest(subject) if subject else None,
        artifact_type=artifact_type,
        created_at=aware(created_at),
    )


_MANIFEST_SELECT = (
    "SELECT m.digest, m.media_type, m.size, m.content, m.subject, m.artifact_type, m.created_at"
)
_MANIFEST_BY_DIGEST = (
    f"{_MANIFEST_SELECT} FROM manifests m JOIN repositories r ON r.id = m.repository_id"
    " WHERE r.name = :repository AND m.digest = :reference AND m.deleted_at IS NULL"
)
_MANIFEST_BY_TAG = (
    f"{_MANIFEST_SELECT} FROM tags t JOIN repositories r ON r.id = t.repository_id"
    " JOIN manifests m ON m.id = t.manifest_id WHERE r.name = :repository AND t.name = :reference"
)


@offloaded
class SqlManifestStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, repository: RepositoryName, reference: Digest | Tag) -> Manifest | None:
        sql = _MANIFEST_BY_DIGEST if ":" in reference else _MANIFEST_BY_TAG
        params = {"repository": repository, "reference": reference}
        return self.db.fetch_one(sql, params, partial(_manifest, repository))

    def _missing(
        self, c: sa.Connection, table: sa.Table, repository_id: int, digests: Sequence[Digest]
    ) -> list[Digest]:
        wanted = set(digests)
        if not wanted:
            return []
        stmt = sa.select(table.c.digest).where(
            table.c.repository_id == repository_id, table.c.digest.in_(wanted)
        )
        if table is manifests:
            stmt = stmt.where(manifests.c.deleted_at.is_(None))
            if self.db.dialect == "postgresql":
                # Held until commit: retention can't delete a child this index lists. (In id
                # order, as retention locks them: no deadlock.)
                stmt = stmt.order_by(manifests.c.id).with_for_update(read=True)
        found = set(c.execute(stmt).scalars())
        return sorted(wanted - found)

    def _version_row(self, repository_id: int, digest: str) -> sa.Select[Any]:
        """The id and deletion time of a version, its row locked (PostgreSQL; SQLite write
        transactions are serialized anyway)."""
        stmt = sa.select(manifests.c.id, manifests.c.deleted_at).where(
            manifests.c.repository_id == repository_id, manifests.c.digest == digest
        )
        return stmt.with_for_update() if self.db.dialect == "postgresql" else stmt

    async def put(
        self,
        repository: RepositoryName,
        manifest: NewManifest,
        tag: Tag | None,
        events: Callable[[StoredManifest], Sequence[Event]] | None = None,
    ) -> StoredManifest:
        """Store a manifest (and tag); ``events(stored)`` are appended in the same
        transaction."""
        with self.db.write() as c:
            repository_id = self.db.ensure_repository(c, repository)
            # Held until commit: the garbage collector can't take a blob this manifest lists.
            blobrows.lock_referenced(c, self.db, manifest.blobs)
            missing = self._missing(c, blob_links, repository_id, manifest.blobs)
            if missing:
                raise ManifestBlobUnknown(
                    f"blob unknown to registry: {missing[0]}", {"digest": missing[0]}
                )
            missing = self._missing(c, manifests, repository_id, manifest.manifests)
            if missing:
                raise ManifestChildUnknown(
                    f"manifest unknown to registry: {missing[0]}", {"digest": missing[0]}
                )
            first_version = (
                c.execute(
                    sa.select(manifests.c.id).where(manifests.c.repository_id == repository_id)
                ).first()
                is None
            )
            at = now()
            fields = self._metadata(c, repository_id, manifest)
            # The version's row stays locked until commit: a cleanup deleting it meanwhile
            # (retention) either finishes first, and this push restores it, or waits and sees
            # the tag this push gives it.
            known = self._version_row(repository_id, manifest.digest)
            row = c.execute(known).first()
            inserted = None
            if row is None:
                # Another replica may insert the same manifest at the same moment: one wins.
                inserted = c.execute(
                    self.db._insert(manifests)
                    .values(
                        repository_id=repository_id,
                        digest=manifest.digest,
                        media_type=manifest.media_type,
                        size=len(manifest.content),
                        content=manifest.content,
                        subject=manifest.subject,
                        artifact_type=manifest.artifact_type,
                        annotations=manifest.annotations or None,
                        created_at=at,
                        updated_at=at,
                        kind=manifest.kind,
                        platform=manifest.platform,
                        **fields,
                    )
                    .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
                    .returning(manifests.c.id)
                ).scalar()
            if inserted is not None:
                manifest_id = inserted
                owner_id = quota.owner_of(c, repository_id)
                if owner_id is not None:  # a new version's bytes are the namespace's now
                    quota.charge(c, quota.lock(c, self.db, owner_id), len(manifest.content))
                refs = [
                    {"manifest_id": manifest_id, "kind": "blob", "digest": d}
                    for d in set(manifest.blobs)
                ]
                refs += [
                    {"manifest_id": manifest_id, "kind": "manifest", "digest": d}
                    for d in set(manifest.manifests)
                ]
                if refs:
                    c.execute(sa.insert(manifest_refs), refs)
            else:
                if row is None:
                    row = c.execute(known).one()
                manifest_id = row.id
                if row.deleted_at is not None:  # pushed again: active again
                    c.execute(
                        sa.update(manifests)
                        .where(manifests.c.id == manifest_id)
                        .values(
                            deleted_at=None, deleted_tags=None, deleted_with=None, updated_at=at
                        )
                    )
            self._mark_children(c, repository_id, manifest)
            tag_before: str | None = None
            tag_moved = False
            if tag is not None:
                before = c.execute(
                    sa.select(tags.c.manifest_id, manifests.c.digest)
                    .join(manifests, manifests.c.id == tags.c.manifest_id)
                    .where(tags.c.repository_id == repository_id, tags.c.name == tag)
                ).first()
                tag_before = before.digest if before else None
                tag_moved = before is None or before.manifest_id != manifest_id
                if not immutability.set_tag(c, self.db, repository_id, tag, manifest_id, at):
                    c.execute(
                        self.db.upsert(
                            tags,
                            ["repository_id", "name"],
                            {
                                "repository_id": repository_id,
                                "name": tag,
                                "manifest_id": manifest_id,
                                "updated_at": at,
                            },
                        )
                    )
                c.execute(
                    sa.update(manifests).where(manifests.c.id == manifest_id).values(updated_at=at)
                )
            package_values: dict[str, Any] = {"updated_at": at}
            if manifest.subject is None and (row is None or row.deleted_at is not None):
                # A new (or pushed again after deletion) version speaks for the package; a
                # known one tagged again does not.
                package_values.update(fields)
            c.execute(
                sa.update(repositories)
                .where(repositories.c.id == repository_id)
                .values(**package_values)
            )
            stored = StoredManifest(
                manifest_id,
                repository_id,
                first_version,
                new_version=row is None or row.deleted_at is not None,
                owner_id=c.execute(
                    sa.select(repositories.c.owner_id).where(repositories.c.id == repository_id)
                ).scalar(),
                tag_moved=tag_moved,
                tag_before=Digest(tag_before) if tag_before else None,
            )
            if events is not None:
                append(c, events(stored))
            return stored

    def _metadata(
        self, c: sa.Connection, repository_id: int, manifest: NewManifest
    ) -> dict[str, str | None]:
        """The version's description, license and source: its own, else (an index) its first
        child's that has one."""
        fields = {
            "description": manifest.description,
            "license": manifest.license,
            "source_url": manifest.source_url,
        }
        if manifest.manifests and not all(fields.values()):
            rows = c.execute(
                sa.select(
                    manifests.c.digest,
                    manifests.c.description,
                    manifests.c.license,
                    manifests.c.source_url,
                ).where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest.in_(set(manifest.manifests)),
                )
            ).all()
            by_digest = {r.digest: r for r in rows}
            attestations = set(manifest.attestations)
            for digest in manifest.manifests:
                child = by_digest.get(digest)
                if child is None or digest in attestations:
                    continue
                for key in fields:
                    if fields[key] is None:
                        fields[key] = getattr(child, key)
        return fields

    def _mark_children(self, c: sa.Connection, repository_id: int, manifest: NewManifest) -> None:
        if not manifest.manifests:
            return
        attestations = set(manifest.attestations)
        for digest in set(manifest.manifests):
            values: dict[str, Any] = {"is_child": True}
            if digest in attestations:
                values["attestation"] = True
            platform = (manifest.child_platforms or {}).get(digest)
            where = [manifests.c.repository_id == repository_id, manifests.c.digest == digest]
            c.execute(sa.update(manifests).where(*where).values(**values))
            if platform:
                c.execute(
                    sa.update(manifests)
                    .where(*where, manifests.c.platform.is_(None))
                    .values(platform=platform)
                )

    async def delete(
        self, repository: RepositoryName, digest: Digest, events: Sequence[Event] = ()
    ) -> bool:
        """Soft-delete a version by digest; ``events`` go with the change (not when there was
        nothing to delete)."""
        with self.db.write() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return False
            manifest_id = c.execute(
                sa.select(manifests.c.id).where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest == digest,
                    manifests.c.deleted_at.is_(None),
                )
            ).scalar()
            if manifest_id is None:
                return False
            delete_versions(c, repository_id, [manifest_id])
            append(c, events)
            return True

    async def add_downloads(self, counts: dict[tuple[str, str], int]) -> None:
        if not counts:
            return
        with self.db.write() as c:
            for (repository, digest), count in counts.items():
                c.execute(
                    sa.update(manifests)
                    .where(
                        manifests.c.digest == digest,
                        manifests.c.repository_id
                        == sa.select(repositories.c.id)
                        .where(repositories.c.name == repository)
                        .scalar_subquery(),
                    )
                    .values(download_count=manifests.c.download_count + count, last_pulled_at=now())
                )

    async def delete_tag(
        self, repository: RepositoryName, tag: Tag, events: Sequence[Event] = ()
    ) -> bool:
        with self.db.write() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return False
            immutability.check_delete_tag(c, repository_id, tag)
            result = c.execute(
                sa.delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag)
            )
            if result.rowcount > 0:
                append(c, events)
            return result.rowcount > 0

    async def list_tags(
        self, repository: RepositoryName, *, last: str | None, limit: int
    ) -> list[Tag] | None:
        """The tags, by name; None if there is no such repository, or none with a version
        yet (a first push in progress, or refused)."""
        with self.db.read() as c:
            repository_id = c.execute(
                sa.select(repositories.c.id).where(repositories.c.name == repository, PUBLISHED)
            ).scalar()
            if repository_id is None:
                return None
            stmt = (
                sa.select(tags.c.name)
                .where(tags.c.repository_id == repository_id)
                .order_by(self.db.bytewise(tags.c.name))
                .limit(limit)
            )
            if last is not None:
                stmt = stmt.where(self.db.bytewise(tags.c.name) > last)
            return [Tag(t) for t in c.execute(stmt).scalars()]

    async def referrers(
        self, repository: RepositoryName, subject: Digest, artifact_type: str | None
    ) -> list[Referrer]:
        stmt = (
            sa.select(
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(
                repositories.c.name == repository,
                manifests.c.subject == subject,
                manifests.c.deleted_at.is_(None),
            )
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        if artifact_type is not None:
            stmt = stmt.where(manifests.c.artifact_type == artifact_type)
        with self.db.read() as c:
            rows = c.execute(stmt).all()
        return [
            Referrer(
                digest=Digest(r.digest),
                media_type=r.media_type,
                size=int(r.size),
                artifact_type=r.artifact_type,
                annotations=dict(r.annotations or {}),
            )
            for r in rows
        ]


def delete_versions(
    c: sa.Connection, package_id: int, ids: Sequence[int], *, exact: bool = False
) -> list[int]:
    """Soft-delete versions ``ids`` of a package, and the children of deleted indexes that no
    other active index references (they go with their index; ``exact``: only ``ids`` go, a
    child among them is marked as gone with its index). Frees their tags (kept in
    ``deleted_tags`` for a restore). Raises VersionInUse if an active index that is not being
    deleted references one of them. Returns every id deleted."""
    at = now()
    active = manifests.c.deleted_at.is_(None)
    rows = c.execute(
        sa.select(manifests.c.id, manifests.c.digest).where(
            manifests.c.repository_id == package_id, manifests.c.id.in_(ids), active
        )
    ).all()
    targets = {r.id: r.digest for r in rows}
    # Children of indexes being deleted go with them (unless another active index uses them).
    index_children: dict[int, int] = {}
    for parent_id in list(targets):
        children = c.execute(
            sa.select(manifests.c.id, manifests.c.digest)
            .join(manifest_refs, manifest_refs.c.digest == manifests.c.digest)
            .where(
                manifest_refs.c.manifest_id == parent_id,
                manifest_refs.c.kind == "manifest",
                manifests.c.repository_id == package_id,
                active,
            )
        ).all()
        for child in children:
            if exact:
                if child.id in targets:
                    index_children.setdefault(child.id, parent_id)
            elif child.id not in targets:
                index_children[child.id] = parent_id
                targets[child.id] = child.digest
    # Refuse if an active index outside the deletion references any target.
    for version_id, digest in list(targets.items()):
        users = c.execute(
            sa.select(manifests.c.id, manifests.c.digest)
            .join(manifest_refs, manifest_refs.c.manifest_id == manifests.c.id)
            .where(
                manifest_refs.c.kind == "manifest",
                manifest_refs.c.digest == digest,
                manifests.c.repository_id == package_id,
                active,
            )
        ).all()
        outside = [u for u in users if u.id not in targets]
        if outside:
            if version_id in index_children:
                del targets[version_id]  # shared with another index: it stays
                del index_children[version_id]
                continue
            raise VersionInUse(
                f"version {digest} is part of index {outside[0].digest}, which is not deleted;"
                " deleting it would break pulls of that index: delete the index (its"
                " platforms go with it) or delete both together",
                {"digest": digest, "index": outside[0].digest},
            )
    immutability.check_delete_versions(c, package_id, list(targets))
    for version_id in targets:
        tag_names = list(
            c.execute(sa.select(tags.c.name).where(tags.c.manifest_id == version_id)).scalars()
        )
        c.execute(sa.delete(tags).where(tags.c.manifest_id == version_id))
        c.execute(
            sa.update(manifests)
            .where(manifests.c.id == version_id)
            .values(
                deleted_at=at,
                deleted_tags=tag_names or None,
                deleted_with=index_children.get(version_id),
            )
        )
    refresh_package_metadata(c, package_id)
    return list(targets)


def refresh_package_metadata(c: sa.Connection, package_id: int) -> None:
    """The package's description, license and source become those of its newest active
    version that is not a referrer (none: cleared)."""
    newest = c.execute(
        sa.select(manifests.c.description, manifests.c.license, manifests.c.source_url)
        .where(
            manifests.c.repository_id == package_id,
            manifests.c.deleted_at.is_(None),
            manifests.c.subject.is_(None),
        )
        .order_by(manifests.c.created_at.desc(), manifests.c.id.desc())
        .limit(1)
    ).first()
    c.execute(
        sa.update(repositories)
        .where(repositories.c.id == package_id)
        .values(
            description=newest.description if newest else None,
            license=newest.license if newest else None,
            source_url=newest.source_url if newest else None,
        )
    )
