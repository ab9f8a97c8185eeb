"""SQL store for packages and their versions as people manage them: listing, deletion, restore,
grants and the purge of deleted content. Values are the dataclasses of
:mod:`cargobay.ports.packages`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cargobay.errors import Conflict
from cargobay.metadata import quota
from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.manifests import delete_versions, refresh_package_metadata
from cargobay.metadata.outbox import append
from cargobay.metadata.schema import (
    accounts,
    blob_links,
    immutable_tag_rules,
    manifest_refs,
    manifests,
    package_access,
    repositories,
    retention_policies,
    source_repositories,
    tags,
    teams,
    unreferenced_blobs,
)
from cargobay.oci.digest import Digest
from cargobay.ports.events import Event
from cargobay.ports.packages import Grant, PackageRecord, Purged, VersionRecord

_owner = accounts.alias("owner")
_source_owner = accounts.alias("source_owner")
_active_versions = (
    sa.select(sa.func.count())
    .where(manifests.c.repository_id == repositories.c.id, manifests.c.deleted_at.is_(None))
    .scalar_subquery()
)
_downloads = (
    sa.select(sa.func.coalesce(sa.func.sum(manifests.c.download_count), 0))
    .where(manifests.c.repository_id == repositories.c.id)
    .scalar_subquery()
)
_PACKAGE_SELECT = (
    sa.select(
        repositories,
        _owner.c.login.label("owner_login"),
        _owner.c.type.label("owner_type"),
        _owner.c.site_admin.label("owner_site_admin"),
        _source_owner.c.site_admin.label("source_owner_site_admin"),
        _source_owner.c.login.label("source_owner"),
        _source_owner.c.type.label("source_owner_type"),
        source_repositories.c.name.label("source_name"),
        source_repositories.c.owner_id.label("source_owner_id"),
        source_repositories.c.private.label("source_private"),
        _active_versions.label("version_count"),
        _downloads.label("download_count"),
    )
    .join(_owner, _owner.c.id == repositories.c.owner_id)
    .outerjoin(source_repositories, source_repositories.c.id == repositories.c.source_repository_id)
    .outerjoin(_source_owner, _source_owner.c.id == source_repositories.c.owner_id)
)


def deleted_name(package_id: int) -> str:
    """The name a deleted package is kept under: no registry name contains ``#``."""
    return f"#deleted/{package_id}"


def _package(row: Any) -> PackageRecord:
    repository = f"{row.source_owner}/{row.source_name}" if row.source_name else None
    created = aware(row.created_at)
    return PackageRecord(
        id=row.id,
        name=row.deleted_name or row.name,
        owner_id=row.owner_id,
        owner_login=row.owner_login,
        owner_type=row.owner_type,
        owner_site_admin=bool(row.owner_site_admin),
        repository_owner_site_admin=bool(row.source_owner_site_admin),
        visibility=row.visibility,
        source_repository_id=row.source_repository_id,
        repository=repository,
        repository_private=bool(row.source_private),
        repository_owner_id=row.source_owner_id,
        repository_owner_type=row.source_owner_type,
        inherit_access=bool(row.inherit_access),
        published_by_repository_id=row.published_by_repository_id,
        description=row.description,
        license=row.license,
        source_url=row.source_url,
        version_count=int(row.version_count),
        download_count=int(row.download_count),
        created_at=created,
        updated_at=aware(row.updated_at) if row.updated_at else created,
        deleted_at=aware(row.deleted_at) if row.deleted_at else None,
    )


@offloaded
class SqlPackageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- packages -----------------------------------------------------------------------------

    async def get(self, name: str) -> PackageRecord | None:
        """The package with this registry name, not deleted."""
        return self._one(repositories.c.name == name)

    async def get_deleted(self, name: str) -> PackageRecord | None:
        """The most recently deleted package that had this registry name."""
        return self._one(repositories.c.deleted_name == name, latest_deleted=True)

    async def by_id(self, package_id: int) -> PackageRecord | None:
        return self._one(repositories.c.id == package_id)

    def _one(self, where: Any, *, latest_deleted: bool = False) -> PackageRecord | None:
        stmt = _PACKAGE_SELECT.where(where)
        if latest_deleted:
            stmt = stmt.where(repositories.c.deleted_at.is_not(None)).order_by(
                repositories.c.deleted_at.desc()
            )
        with self.db.read() as c:
            row = c.execute(stmt.limit(1)).first()
        return _package(row) if row else None

    async def for_owner(self, owner_id: int, visibility: str | None = None) -> list[PackageRecord]:
        """The owner's packages that are not deleted, by name."""
        stmt = _PACKAGE_SELECT.where(
            repositories.c.owner_id == owner_id, repositories.c.deleted_at.is_(None)
        )
        if visibility:
            stmt = stmt.where(repositories.c.visibility == visibility)
        with self.db.read() as c:
            rows = c.execute(stmt.order_by(self.db.bytewise(repositories.c.name))).all()
        return [_package(r) for r in rows]

    async def deleted_for_owner(self, owner_id: int) -> list[PackageRecord]:
        """The owner's deleted packages (not purged yet), most recently deleted first."""
        stmt = _PACKAGE_SELECT.where(
            repositories.c.owner_id == owner_id, repositories.c.deleted_at.is_not(None)
        ).order_by(repositories.c.deleted_at.desc())
        with self.db.read() as c:
            return [_package(r) for r in c.execute(stmt).all()]

    async def update(self, package_id: int, *, events: Sequence[Event] = (), **values: Any) -> None:
        """Set columns of the package (visibility, inherit_access, source_repository_id);
        ``events`` go in the same transaction (as with every method that takes them)."""
        with self.db.write() as c:
            c.execute(sa.update(repositories).where(repositories.c.id == package_id).values(values))
            append(c, events)

    async def delete(self, package_id: int, events: Sequence[Event] = ()) -> None:
        """Delete the package: its name is free at once; versions, tags and grants are kept for
        a restore until purged."""
        with self.db.write() as c:
            c.execute(
                sa.update(repositories)
                .where(repositories.c.id == package_id, repositories.c.deleted_at.is_(None))
                .values(
                    deleted_at=now(),
                    deleted_name=repositories.c.name,
                    name=deleted_name(package_id),
                )
            )
            append(c, events)

    async def restore(self, package_id: int, events: Sequence[Event] = ()) -> None:
        """Restore a deleted package under its name. Raises Conflict if the name was reused."""
        with self.db.write() as c:
            row = c.execute(
                sa.select(repositories.c.deleted_name).where(
                    repositories.c.id == package_id, repositories.c.deleted_at.is_not(None)
                )
            ).first()
            if row is None:
                return
            taken = c.execute(
                sa.select(repositories.c.id).where(repositories.c.name == row.deleted_name)
            ).first()
            if taken is not None:
                raise Conflict(
                    f"the name {row.deleted_name!r} has been used by a new package since this one"
                    " was deleted; delete or rename that package first"
                )
            c.execute(
                sa.update(repositories)
                .where(repositories.c.id == package_id)
                .values(name=row.deleted_name, deleted_name=None, deleted_at=None)
            )
            append(c, events)

    # -- versions -----------------------------------------------------------------------------

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

    # -- grants -------------------------------------------------------------------------------

    async def grants(self, package_id: int) -> list[Grant]:
        """Roles granted on the package to users, teams and source repositories."""
        with self.db.read() as c:
            rows = c.execute(
                sa.select(package_access).where(package_access.c.repository_id == package_id)
            ).all()
            granted: dict[str, set[int]] = {}
            for r in rows:
                granted.setdefault(r.grantee_type, set()).add(r.grantee_id)
            team_rows = c.execute(
                sa.select(teams.c.id, teams.c.org_id, teams.c.slug).where(
                    teams.c.id.in_(granted.get("team", set()))
                )
            ).all()
            repo_rows = c.execute(
                sa.select(
                    source_repositories.c.id,
                    source_repositories.c.owner_id,
                    source_repositories.c.name,
                ).where(source_repositories.c.id.in_(granted.get("source_repository", set())))
            ).all()
            account_ids = granted.get("user", set()) | {t.org_id for t in team_rows}
            account_ids |= {r.owner_id for r in repo_rows}
            logins = dict(
                c.execute(
                    sa.select(accounts.c.id, accounts.c.login).where(accounts.c.id.in_(account_ids))
                ).all()
            )
        team_names = {t.id: f"{logins.get(t.org_id, '?')}/{t.slug}" for t in team_rows}
        repo_names = {r.id: f"{logins.get(r.owner_id, '?')}/{r.name}" for r in repo_rows}
        names = {"user": logins, "team": team_names, "source_repository": repo_names}
        return sorted(
            (
                Grant(
                    r.grantee_type,
                    r.grantee_id,
                    names[r.grantee_type].get(r.grantee_id, "?"),
                    r.role,
                )
                for r in rows
                if r.grantee_type in names
            ),
            key=lambda g: (g.grantee_type, g.grantee),
        )

    async def grant(
        self,
        package_id: int,
        grantee_type: str,
        grantee_id: int,
        role: str,
        events: Sequence[Event] = (),
    ) -> None:
        with self.db.write() as c:
            append(c, events)
            c.execute(
                self.db.upsert(
                    package_access,
                    ["repository_id", "grantee_type", "grantee_id"],
                    {
                        "repository_id": package_id,
                        "grantee_type": grantee_type,
                        "grantee_id": grantee_id,
                        "role": role,
                    },
                )
            )

    async def revoke(
        self, package_id: int, grantee_type: str, grantee_id: int, events: Sequence[Event] = ()
    ) -> bool:
        with self.db.write() as c:
            result = c.execute(
                sa.delete(package_access).where(
                    package_access.c.repository_id == package_id,
                    package_access.c.grantee_type == grantee_type,
                    package_access.c.grantee_id == grantee_id,
                )
            )
            if result.rowcount > 0:
                append(c, events)
            return result.rowcount > 0

    # -- purge --------------------------------------------------------------------------------

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
