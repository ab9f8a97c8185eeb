"""Packages as people manage them: who sees which, metadata and repository links, deletion and
restore with their rules, settings (visibility, grants, links), and the purge of old deletions.

The REST API and the pages call this; every method takes the principal and checks its role and
token scopes itself. Rules are in ``docs/permissions.md`` and ``docs/rest-api.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cargobay.auth.policy import Role, Scope, Visibility
from cargobay.auth.principal import Principal
from cargobay.errors import (
    CargobayError,
    Conflict,
    DeletionRefused,
    NotFound,
    Unauthenticated,
)
from cargobay.oci.digest import Digest
from cargobay.ports.accounts import AccountStore
from cargobay.ports.packages import Grant, PackageRecord, PackageStore, Purged, VersionRecord
from cargobay.services.access import AccessService
from cargobay.services.events import Action, Event, EventBus, acting

log = logging.getLogger(__name__)


class ScopeMissing(CargobayError):
    """the token lacks a scope this needs"""

    def __init__(self, needed: tuple[Scope, ...], has: frozenset[Scope] | None) -> None:
        names = ", ".join(s.value for s in needed)
        super().__init__(f"this token needs the {names} scope(s)")
        self.needed = needed
        self.has = has


class Forbidden(CargobayError):
    """you do not have the role this needs on the package"""


READ = (Scope.READ_PACKAGES,)
DELETE = (Scope.READ_PACKAGES, Scope.DELETE_PACKAGES)
WRITE = (Scope.READ_PACKAGES, Scope.WRITE_PACKAGES)


def _has_scopes(principal: Principal, needed: tuple[Scope, ...]) -> bool:
    if principal.scopes is None:
        return True
    # write:packages includes read:packages, as on GitHub.
    granted = set(principal.scopes)
    if Scope.WRITE_PACKAGES in granted:
        granted.add(Scope.READ_PACKAGES)
    return all(s in granted for s in needed)


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


class PackageService:
    def __init__(
        self,
        store: PackageStore,
        accounts: AccountStore,
        access: AccessService,
        *,
        web_base: str,
        restore_window: float,
        protected_downloads: int,
        events: EventBus | None = None,
    ) -> None:
        self.events = events or EventBus()
        self.store = store
        self.accounts = accounts
        self.access = access
        self.web_base = web_base.rstrip("/")
        self.restore_window = timedelta(seconds=restore_window)
        self.protected_downloads = protected_downloads

    # -- who may do what ------------------------------------------------------------------------

    def _require(self, principal: Principal, needed: tuple[Scope, ...]) -> None:
        """The REST API wants a token on every call (as GitHub's does); the pages let anonymous
        visitors read public packages (``principal.web``)."""
        if principal.anonymous and not (principal.web and needed == READ):
            raise Unauthenticated("Requires authentication")
        if not _has_scopes(principal, needed):
            raise ScopeMissing(needed, principal.scopes)

    async def role(self, principal: Principal, package: PackageRecord) -> Role:
        return await self.access.role(principal, package.access)

    async def _visible(self, principal: Principal, package: PackageRecord | None) -> PackageRecord:
        if package is None or await self.role(principal, package) < Role.READ:
            raise NotFound("Package not found.")
        return package

    async def _admin(self, principal: Principal, package: PackageRecord) -> None:
        role = await self.role(principal, package)
        if role < Role.READ:
            raise NotFound("Package not found.")
        if role < Role.ADMIN:
            raise Forbidden("You need admin access to this package to do this.")

    async def owner(self, login: str, type_: str | None) -> int:
        account = await self.accounts.by_login(login.lower())
        if account is None or (type_ is not None and account.type != type_):
            raise NotFound("Not Found")
        return account.id

    @staticmethod
    def _event(
        action: Action,
        principal: Principal,
        package: PackageRecord,
        version: VersionRecord | None = None,
        data: dict[str, object] | None = None,
    ) -> Event:
        return Event(
            action,
            acting(principal),
            owner_id=package.owner_id,
            package_id=package.id,
            package=package.name,
            version_id=version.id if version else None,
            digest=version.digest if version else None,
            data=data or {},
        )

    @staticmethod
    def registry_name(owner: str, package_name: str) -> str:
        return f"{owner.lower()}/{package_name}"

    # -- reading ------------------------------------------------------------------------------

    async def list_packages(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        *,
        visibility: str | None,
        page: Page,
        query: str | None = None,
    ) -> tuple[list[PackageRecord], int]:
        """The owner's packages the principal may read, by name (those whose name contains
        ``query``); and how many there are."""
        self._require(principal, READ)
        owner_id = await self.owner(owner, owner_type)
        needle = (query or "").strip().lower()
        visible = [
            p
            for p in await self.store.for_owner(owner_id, visibility)
            if needle in p.package_name and await self.role(principal, p) >= Role.READ
        ]
        return visible[page.offset : page.offset + page.size], len(visible)

    async def check_owner(self, principal: Principal, owner: str, owner_type: str | None) -> None:
        """What listing needs before anything is listed: a token, and the owner exists."""
        self._require(principal, READ)
        await self.owner(owner, owner_type)

    async def get(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> PackageRecord:
        self._require(principal, READ)
        await self.owner(owner, owner_type)
        package = await self.store.get(self.registry_name(owner, package_name))
        return await self._visible(principal, package)

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

    # -- deleting and restoring ----------------------------------------------------------------

    def _check_downloads(
        self, principal: Principal, package: PackageRecord, downloads: int
    ) -> None:
        if (
            package.visibility == Visibility.PUBLIC
            and downloads > self.protected_downloads
            and not principal.site_admin
        ):
            raise DeletionRefused(
                f"Publicly visible package versions with more than {self.protected_downloads}"
                " downloads cannot be deleted. Ask a site administrator to delete it."
            )

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

    def _check_window(self, deleted_at: datetime | None) -> None:
        if deleted_at is None:
            raise Conflict("This is not deleted.")
        if deleted_at < datetime.now(UTC) - self.restore_window:
            days = self.restore_window.total_seconds() / 86400
            raise NotFound(f"Deleted more than {days:g} days ago: it can no longer be restored.")

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

    # -- settings (admins) ---------------------------------------------------------------------

    async def settings_target(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> PackageRecord:
        """The package, if ``principal`` may change its settings (admin, write scope)."""
        return await self._settings_target(principal, owner, owner_type, package_name)

    async def _settings_target(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> PackageRecord:
        self._require(principal, WRITE)
        package = await self.get(principal, owner, owner_type, package_name)
        await self._admin(principal, package)
        return package

    async def update(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        *,
        visibility: str | None = None,
        inherit_access: bool | None = None,
    ) -> PackageRecord:
        package = await self._settings_target(principal, owner, owner_type, package_name)
        values: dict[str, Any] = {}
        if visibility is not None and visibility != package.visibility:
            if package.visibility == Visibility.PUBLIC:
                raise Conflict("A public package cannot be made private or internal again.")
            account = await self.accounts.by_id(package.owner_id)
            if (
                account is not None
                and account.is_org
                and visibility not in account.package_visibilities
            ):
                raise Forbidden(f"The organization does not allow {visibility} packages.")
            if visibility == Visibility.INTERNAL and not (account and account.is_org):
                raise Conflict("Only organization packages can be internal.")
            values["visibility"] = visibility
        if inherit_access is not None:
            if inherit_access and package.source_repository_id is None:
                raise Conflict("Link a repository before inheriting its access.")
            values["inherit_access"] = inherit_access
        if values:
            events = []
            if "visibility" in values:
                events.append(
                    self._event(
                        Action.VISIBILITY_CHANGED,
                        principal,
                        package,
                        data={"visibility": values["visibility"], "before": package.visibility},
                    )
                )
            await self.store.update(package.id, events=events, **values)
            await self.events.dispatch(events)
        found = await self.store.by_id(package.id)
        assert found is not None
        return found

    async def grants(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> list[Grant]:
        package = await self._settings_target(principal, owner, owner_type, package_name)
        return await self.store.grants(package.id)

    async def grant(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        *,
        grantee_type: str,
        grantee: str,
        role: str | None,
    ) -> None:
        """Grant ``role`` (read, write, admin) to a user, a team (``slug`` of the owning org) or
        a repository (``owner/name``, 'Actions access'); ``role`` None revokes."""
        package = await self._settings_target(principal, owner, owner_type, package_name)
        grantee_id = await self._grantee_id(package, grantee_type, grantee)
        who: dict[str, object] = {
            "grantee_type": grantee_type,
            "grantee": grantee,
            "grantee_id": grantee_id,
        }
        if role is None:
            events = [self._event(Action.ACCESS_REVOKED, principal, package, data=who)]
            if not await self.store.revoke(package.id, grantee_type, grantee_id, events):
                raise NotFound("No such grant.")
            await self.events.dispatch(events)
            return
        if role not in ("read", "write", "admin"):
            raise Conflict(f"Invalid role {role!r}: use read, write or admin.")
        granted = self._event(Action.ACCESS_GRANTED, principal, package, data={**who, "role": role})
        events = [granted]
        await self.store.grant(package.id, grantee_type, grantee_id, role, events)
        await self.events.dispatch(events)

    async def _grantee_id(self, package: PackageRecord, grantee_type: str, grantee: str) -> int:
        if grantee_type == "user":
            account = await self.accounts.by_login(grantee.lower())
            if account is None or account.is_org:
                raise NotFound(f"No user named {grantee!r}.")
            return account.id
        if grantee_type == "team":
            team_id = await self.accounts.team_id(package.owner_id, grantee.lower())
            if team_id is None:
                raise NotFound(f"No team {grantee!r} in {package.owner_login}.")
            return team_id
        owner, _, name = grantee.partition("/")
        repository = await self.accounts.source_repository_by_name(owner.lower(), name.lower())
        if repository is None:
            raise NotFound(f"No repository named {grantee!r}.")
        return repository.id

    async def link(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        repository: str | None,
    ) -> PackageRecord:
        """Link the package to a repository of its owner (``name`` or ``owner/name``), or
        unlink it (None; inheriting access stops). Existing grants stay either way."""
        package = await self._settings_target(principal, owner, owner_type, package_name)
        if repository is None:
            await self.store.update(package.id, source_repository_id=None, inherit_access=False)
        else:
            repo_owner, _, name = repository.rpartition("/")
            repo_owner = repo_owner or package.owner_login
            if repo_owner.lower() != package.owner_login:
                raise Conflict("A package can only be linked to a repository of its owner.")
            found = await self.accounts.source_repository_by_name(repo_owner.lower(), name.lower())
            if found is None:
                raise NotFound(f"No repository named {repo_owner}/{name}.")
            await self.store.update(package.id, source_repository_id=found.id)
        result = await self.store.by_id(package.id)
        assert result is not None
        return result

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
