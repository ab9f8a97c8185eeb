"""SQL store for packages as people manage them: listing, deletion and restore; their versions
(:mod:`.package_versions`), grants (:mod:`.package_grants`) and the purge of deleted content
(:mod:`.package_purge`) come from its bases. Values are the dataclasses of
:mod:`cargobay.ports.packages`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cargobay.errors import Conflict
from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.outbox import append
from cargobay.metadata.package_grants import SqlGrantStore
from cargobay.metadata.package_purge import SqlPurge
from cargobay.metadata.package_versions import SqlVersionStore
from cargobay.metadata.schema import (
    accounts,
    manifests,
    repositories,
    source_repositories,
)
from cargobay.ports.events import Event
from cargobay.ports.packages import PackageRecord

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
        published=row.updated_at is not None,
    )


@offloaded
class SqlPackageStore(SqlVersionStore, SqlGrantStore, SqlPurge):
    """Packages, and (from its bases) their versions, grants and purge."""

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
