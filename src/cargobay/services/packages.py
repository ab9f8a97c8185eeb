"""Packages as people manage them: who sees which, metadata and repository links, deletion and
restore with their rules, settings (visibility, grants, links), and the purge of old deletions.
Versions are in :mod:`cargobay.services.package_versions`, settings in
:mod:`cargobay.services.package_settings`, what they share in :mod:`cargobay.services.package_core`.

The REST API and the pages call this; every method takes the principal and checks its role and
token scopes itself. Rules are in ``docs/permissions.md`` and ``docs/rest-api.md``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cargobay.auth.policy import Role
from cargobay.auth.principal import Principal
from cargobay.errors import Conflict
from cargobay.ports.packages import PackageRecord, Purged
from cargobay.services.events import Action, Event
from cargobay.services.package_core import DELETE, WRITE
from cargobay.services.package_settings import PackageSettings
from cargobay.services.package_versions import PackageVersions

log = logging.getLogger(__name__)


class PackageService(PackageVersions, PackageSettings):
    """Every package use case: packages here, versions and settings from the bases."""

    async def deleted(
        self, principal: Principal, owner: str, owner_type: str | None
    ) -> list[PackageRecord]:
        """Deleted packages of an owner that the caller could restore (admin), newest first."""
        owner_id = await self.owner(owner, owner_type)
        found = []
        cutoff = datetime.now(UTC) - self.restore_window
        for package in await self.store.deleted_for_owner(owner_id):
            recent = package.deleted_at is not None and package.deleted_at >= cutoff
            if recent and await self.role(principal, package) >= Role.ADMIN:
                found.append(package)
        return found

    # -- deleting and restoring ------------------------------------------------------------------

    async def delete(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> None:
        """Delete the package and all its versions; its name is free at once."""
        self._require(principal, DELETE)
        package = await self.get(principal, owner, owner_type, package_name)
        await self._admin(principal, package)
        self._check_downloads(principal, package, await self.store.max_downloads(package.id))
        events = [self._event(Action.PACKAGE_DELETED, principal, package)]
        await self.store.delete(package.id, events)
        await self.events.dispatch(events)

    async def restore(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> None:
        """Restore the most recently deleted package of that name, within the restore window."""
        self._require(principal, WRITE)
        await self.owner(owner, owner_type)
        name = self.registry_name(owner, package_name)
        package = await self.store.get_deleted(name)
        if package is None:
            active = await self.store.get(name)
            if active is not None and await self.role(principal, active) >= Role.READ:
                raise Conflict("This package is not deleted.")
        package = await self._visible(principal, package)
        await self._admin(principal, package)
        self._check_window(package.deleted_at)
        events = [self._event(Action.PACKAGE_RESTORED, principal, package)]
        await self.store.restore(package.id, events)
        await self.events.dispatch(events)

    async def purge_expired(self) -> Purged:
        """Purge what was deleted before the restore window."""
        purged = await self.store.purge(datetime.now(UTC) - self.restore_window)
        if purged.packages or purged.versions:
            log.info(
                "purged %d packages and %d versions; %d blobs are no longer referenced",
                purged.packages,
                purged.versions,
                len(purged.unreferenced),
            )
        return purged

    # -- publishing ----------------------------------------------------------------------------

    def source_repository_name(self, source_url: str) -> tuple[str, str] | None:
        """``(owner, name)`` if ``source_url`` names a repository page of this instance."""
        base = urlsplit(self.web_base)
        url = urlsplit(source_url.strip())
        if url.scheme not in ("http", "https") or url.netloc.lower() != base.netloc.lower():
            return None
        path = url.path
        prefix = base.path.rstrip("/")
        if prefix and not path.startswith(prefix + "/"):
            return None
        parts = [p for p in path[len(prefix) :].split("/") if p]
        if len(parts) != 2:
            return None
        owner, name = parts
        name = name.removesuffix(".git")
        return owner.lower(), name.lower()

    async def published(self, event: Event) -> None:
        """After a manifest push (a version published, not a referrer): link the package to
        the repository its source URL names (a repository of the package's owner on this
        instance). On the first version it also inherits the repository's access
        (organizations: as their default says)."""
        source_url = event.data.get("source_url")
        if not source_url or event.data.get("subject") or event.package_id is None:
            return
        named = self.source_repository_name(str(source_url))
        if named is None:
            return
        package = await self.store.by_id(event.package_id)
        if package is None or package.source_repository_id is not None:
            return
        if named[0] != package.owner_login:
            return
        repository = await self.accounts.source_repository_by_name(*named)
        if repository is None:
            return
        values: dict[str, Any] = {"source_repository_id": repository.id}
        if event.data.get("first_version"):
            owner = await self.accounts.by_id(package.owner_id)
            values["inherit_access"] = (
                owner.inherit_access_default if owner and owner.is_org else True
            )
        await self.store.update(package.id, **values)

    # -- helpers for the API layer -------------------------------------------------------------

    def package_html_url(self, package: PackageRecord) -> str:
        return f"{self.web_base}{package.html_path}"
