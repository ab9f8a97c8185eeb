"""Packages as people manage them (versions, tags, grants, immutable tags): the stores and the
frozen values they return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cargobay.oci.digest import Digest
from cargobay.ports.accounts import (
    AccountStore,
    PackageAccess,
    PackageAccessStore,
    SessionStore,
    TokenStore,
)
from cargobay.ports.events import Event


@dataclass(frozen=True, slots=True)
class PackageRecord:
    """A package as people manage it (the REST API, the pages)."""

    id: int
    #: The registry name ``owner/name`` (for a deleted package: the name it had).
    name: str
    owner_id: int
    owner_login: str
    owner_type: str
    visibility: str
    source_repository_id: int | None
    #: ``owner/name`` of the linked source repository.
    repository: str | None
    repository_private: bool
    repository_owner_id: int | None
    repository_owner_type: str | None
    inherit_access: bool
    published_by_repository_id: int | None
    description: str | None
    license: str | None
    source_url: str | None
    version_count: int
    download_count: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    #: Whether the owner (a user) and the linked repository's owner are site administrators.
    owner_site_admin: bool = False
    repository_owner_site_admin: bool = False
    #: Whether a version was ever pushed (:data:`cargobay.metadata.schema.PUBLISHED`).
    published: bool = True

    @property
    def package_name(self) -> str:
        """The name within the namespace (``team/api`` for ``acme/team/api``)."""
        return self.name.split("/", 1)[1]

    @property
    def owner_scope(self) -> str:
        """``orgs`` or ``users``: the owner's path segment in URLs, as on GitHub."""
        return "orgs" if self.owner_type == "Organization" else "users"

    @property
    def owner_path(self) -> str:
        """The path of the owner's package list page."""
        return f"/{self.owner_scope}/{self.owner_login}/packages"

    @property
    def html_path(self) -> str:
        """The path of the package page."""
        return f"{self.owner_path}/container/package/{self.package_name}"

    @property
    def access(self) -> PackageAccess:
        return PackageAccess(
            id=self.id,
            name=self.name,
            owner_id=self.owner_id,
            visibility=self.visibility,
            source_repository_id=self.source_repository_id,
            inherit_access=self.inherit_access,
            published_by_repository_id=self.published_by_repository_id,
        )


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One manifest of a package."""

    id: int
    package_id: int
    digest: Digest
    media_type: str
    kind: str
    #: Bytes of the manifest and everything it references (layers, config, children).
    size: int
    platform: str | None
    is_child: bool
    attestation: bool
    subject: Digest | None
    artifact_type: str | None
    tags: tuple[str, ...]
    description: str | None
    license: str | None
    source_url: str | None
    download_count: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    #: Indexes (not deleted) that list this manifest.
    parents: tuple[Digest, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    grantee_type: str
    grantee_id: int
    #: login, ``org/team`` or ``owner/repository``.
    grantee: str
    role: str


@dataclass(frozen=True, slots=True)
class Purged:
    packages: int
    versions: int
    #: Blobs no package links any more.
    unreferenced: tuple[Digest, ...]


class PackageStore(Protocol):
    async def get(self, name: str) -> PackageRecord | None:
        """The package with this registry name, not deleted."""

    async def get_deleted(self, name: str) -> PackageRecord | None:
        """The most recently deleted package that had this registry name."""

    async def by_id(self, package_id: int) -> PackageRecord | None: ...

    async def for_owner(self, owner_id: int, visibility: str | None = None) -> list[PackageRecord]:
        """The owner's packages that are not deleted, by name."""

    async def deleted_for_owner(self, owner_id: int) -> list[PackageRecord]:
        """The owner's deleted packages (not purged yet), most recently deleted first."""

    async def update(self, package_id: int, *, events: Sequence[Event] = (), **values: Any) -> None:
        """Set columns of the package (visibility, inherit_access, source_repository_id);
        ``events`` go in the same transaction (as with every method that takes them)."""

    async def delete(self, package_id: int, events: Sequence[Event] = ()) -> None:
        """Delete the package: its name is free at once; versions, tags and grants are kept for
        a restore until purged."""

    async def restore(self, package_id: int, events: Sequence[Event] = ()) -> None:
        """Restore a deleted package under its name. Raises Conflict if the name was reused."""

    async def versions(
        self, package_id: int, *, deleted: bool, offset: int, limit: int
    ) -> tuple[list[VersionRecord], int]:
        """A page of active (or deleted) versions, newest first, and how many there are."""

    async def tags(self, package_id: int) -> list[tuple[str, VersionRecord]]:
        """Every tag with the version it names, most recently moved first."""

    async def children(self, package_id: int, version_id: int) -> list[VersionRecord]:
        """The manifests an index lists, in its order."""

    async def version(self, package_id: int, version_id: int) -> VersionRecord | None: ...

    async def version_by_digest(self, package_id: int, digest: Digest) -> VersionRecord | None: ...

    async def delete_versions(
        self, package_id: int, ids: Sequence[int], events: Sequence[Event] = ()
    ) -> list[int]:
        """Soft-delete versions (see :func:`cargobay.metadata.manifests.delete_versions`)."""

    async def restore_version(
        self, package_id: int, version_id: int, events: Sequence[Event] = ()
    ) -> list[int]:
        """Restore a deleted version and, for an index, every deleted manifest it lists (an
        active index never lists a deleted manifest), with their tags that are still free.
        Returns the ids restored."""

    async def max_downloads(self, package_id: int) -> int: ...

    async def grants(self, package_id: int) -> list[Grant]:
        """Roles granted on the package to users, teams and source repositories."""

    async def grant(
        self,
        package_id: int,
        grantee_type: str,
        grantee_id: int,
        role: str,
        events: Sequence[Event] = (),
    ) -> None: ...

    async def revoke(
        self, package_id: int, grantee_type: str, grantee_id: int, events: Sequence[Event] = ()
    ) -> bool: ...

    async def purge(self, before: datetime) -> Purged:
        """Remove packages and versions deleted before ``before`` for good. Blobs no package
        links any more are recorded in ``unreferenced_blobs`` for the garbage collector."""

    async def unreferenced(self) -> list[Digest]: ...


class ImmutableTagStore(Protocol):
    async def patterns(self, package_id: int) -> list[str]: ...

    async def replace(self, package_id: int, patterns: Sequence[str]) -> list[str]:
        """Make ``patterns`` the package's rules (none: no tag is immutable)."""


class AccountStores(Protocol):
    """The stores account administration works on (see
    :class:`~cargobay.services.accounts.AccountService`)."""

    @property
    def accounts(self) -> AccountStore: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def packages(self) -> PackageAccessStore: ...
    @property
    def package_records(self) -> PackageStore: ...
    @property
    def sessions(self) -> SessionStore: ...
