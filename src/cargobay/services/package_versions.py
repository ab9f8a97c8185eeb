"""Package versions as people manage them: pages of versions, one version, its tags and an
index's children; deleting a version (also through ``DELETE /v2/.../manifests/<digest>``) and
restoring it within the restore window."""

from __future__ import annotations

from cargobay.auth.principal import Principal
from cargobay.errors import NotFound
from cargobay.oci.digest import Digest
from cargobay.ports.packages import PackageRecord, VersionRecord
from cargobay.services.events import Action
from cargobay.services.package_core import DELETE, WRITE, PackageCore, Page


class PackageVersions(PackageCore):
    async def versions(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        *,
        deleted: bool,
        page: Page,
    ) -> tuple[PackageRecord, list[VersionRecord], int]:
        package = await self.get(principal, owner, owner_type, package_name)
        found, total = await self.store.versions(
            package.id, deleted=deleted, offset=page.offset, limit=page.size
        )
        return package, found, total

    async def version(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        version_id: int,
    ) -> tuple[PackageRecord, VersionRecord]:
        package = await self.get(principal, owner, owner_type, package_name)
        version = await self.store.version(package.id, version_id)
        if version is None:
            raise NotFound("Package version not found.")
        return package, version

    async def tags(self, package: PackageRecord) -> list[tuple[str, VersionRecord]]:
        """Every tag of a package the caller has read (via :meth:`get`), newest first."""
        return await self.store.tags(package.id)

    async def children(self, package: PackageRecord, version: VersionRecord) -> list[VersionRecord]:
        """The manifests an index version lists (platform images and attestations)."""
        return await self.store.children(package.id, version.id)

    async def delete_version(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        version_id: int,
    ) -> None:
        self._require(principal, DELETE)
        package, version = await self.version(
            principal, owner, owner_type, package_name, version_id
        )
        await self._admin(principal, package)
        if version.deleted_at is not None:
            raise NotFound("Package version not found.")
        self._check_downloads(principal, package, version.download_count)
        events = [self._event(Action.VERSION_DELETED, principal, package, version)]
        await self.store.delete_versions(package.id, [version.id], events)
        await self.events.dispatch(events)

    async def delete_manifest(self, principal: Principal, name: str, digest: Digest) -> bool:
        """A registry ``DELETE /v2/<name>/manifests/<digest>`` (the caller is authorized):
        the same rules as deleting the version. False if there is no such version."""
        package = await self.store.get(name)
        if package is None:
            return False
        version = await self.store.version_by_digest(package.id, digest)
        if version is None or version.deleted_at is not None:
            return False
        self._check_downloads(principal, package, version.download_count)
        events = [self._event(Action.VERSION_DELETED, principal, package, version)]
        await self.store.delete_versions(package.id, [version.id], events)
        await self.events.dispatch(events)
        return True

    async def restore_version(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        version_id: int,
    ) -> None:
        self._require(principal, WRITE)
        package, version = await self.version(
            principal, owner, owner_type, package_name, version_id
        )
        await self._admin(principal, package)
        self._check_window(version.deleted_at)
        events = [self._event(Action.VERSION_RESTORED, principal, package, version)]
        await self.store.restore_version(package.id, version.id, events)
        await self.events.dispatch(events)
