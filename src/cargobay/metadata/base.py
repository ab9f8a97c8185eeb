"""Metadata store protocols, split by aggregate, and the frozen values they return.

Each method is one transaction. Every implementation passes ``tests/contract/test_metadata.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cargobay.metadata.events import Event
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag


@dataclass(frozen=True, slots=True)
class Manifest:
    repository: RepositoryName
    digest: Digest
    media_type: str
    size: int
    content: bytes
    subject: Digest | None
    artifact_type: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Referrer:
    """A manifest whose ``subject`` is another manifest, as the referrers API lists it."""

    digest: Digest
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class NewManifest:
    """What a manifest push stores: the document plus what it references."""

    digest: Digest
    media_type: str
    content: bytes
    subject: Digest | None
    artifact_type: str | None
    annotations: dict[str, str]
    #: Blobs (config, distributable layers) that must be linked in the repository.
    blobs: Sequence[Digest]
    #: Child manifests (of an index) that must exist in the repository.
    manifests: Sequence[Digest]
    #: Package metadata (``image``, ``index`` or ``artifact``; ``os/arch[/variant]``; what its
    #: ``org.opencontainers.image.*`` labels and annotations say). An index missing a field
    #: takes it from its first child that has it.
    kind: str = "image"
    platform: str | None = None
    description: str | None = None
    license: str | None = None
    source_url: str | None = None
    #: Children of an index that are attestations (``vnd.docker.reference.type``), and the
    #: platform the index gives each child.
    attestations: Sequence[Digest] = ()
    child_platforms: dict[Digest, str] | None = None


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """What a manifest push did: the version's id, whether it was the package's first, whether
    the version is new (or active again), and where the tag pointed before (if it moved)."""

    id: int
    package_id: int
    first_version: bool
    new_version: bool = False
    owner_id: int | None = None
    #: The tag was created (None before) or moved to this version.
    tag_moved: bool = False
    tag_before: Digest | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    repository: RepositoryName
    started_at: datetime
    touched_at: datetime


class RepositoryStore(Protocol):
    async def exists(self, name: RepositoryName) -> bool:
        """Whether the repository has ever had content pushed to it."""

    async def list_names(self, *, last: str | None, limit: int) -> list[RepositoryName]:
        """Repository names in lexical order, strictly after ``last``, at most ``limit``."""


class BlobLinkStore(Protocol):
    async def linked_size(self, repository: RepositoryName, digest: Digest) -> int | None:
        """Size of the blob if ``repository`` links it, else None."""

    async def link(self, repository: RepositoryName, digest: Digest, size: int) -> None:
        """Link a stored blob into ``repository`` (creating the repository). Idempotent.
        Raises Unavailable if the garbage collector is removing the blob (it was not pinned, or
        its grace period ran out before the link)."""

    async def pin(self, digest: Digest, size: int) -> bool:
        """Protect the blob's bytes from the garbage collector for its grace period, before an
        upload makes them the blob (see :mod:`cargobay.metadata.blobrows`). False while the
        collector is removing them: wait and try again."""

    async def mount(
        self, repository: RepositoryName, digest: Digest, source: RepositoryName
    ) -> int | None:
        """Link ``source``'s blob into ``repository`` in one transaction; its size, or None if
        ``source`` doesn't link it (nothing changes)."""

    async def unlink(self, repository: RepositoryName, digest: Digest) -> bool:
        """Remove the link. True if there was one."""


class ManifestStore(Protocol):
    async def get(self, repository: RepositoryName, reference: Digest | Tag) -> Manifest | None:
        """The manifest a digest or a tag names in ``repository``, or None."""

    async def put(
        self,
        repository: RepositoryName,
        manifest: NewManifest,
        tag: Tag | None,
        events: Callable[[StoredManifest], Sequence[Event]] | None = None,
    ) -> StoredManifest:
        """Store ``manifest`` (idempotent for the same digest; a deleted version pushed again
        is active again) and point ``tag`` at it, atomically; the package's description,
        license and source become the version's (unless it is a referrer, i.e. has a subject).

        In the same transaction checks that every ``manifest.blobs`` is linked in the repository
        (else ManifestBlobUnknown) and every ``manifest.manifests`` exists there, not deleted
        (else ManifestUnknown); marks those children; on error nothing changes.
        ``events(stored)`` are appended to the outbox in the same transaction.
        """

    async def delete(
        self, repository: RepositoryName, digest: Digest, events: Sequence[Event] = ()
    ) -> bool:
        """Delete the version (restorable): it is no longer pullable and its tags are free; an
        index takes its children with it unless another index uses them. Raises VersionInUse
        if an index that is not deleted references it. True if it existed."""

    async def delete_tag(
        self, repository: RepositoryName, tag: Tag, events: Sequence[Event] = ()
    ) -> bool:
        """Delete only the tag (with ``events``, in one transaction). True if it existed."""

    async def list_tags(
        self, repository: RepositoryName, *, last: str | None, limit: int
    ) -> list[Tag] | None:
        """Tags in lexical order after ``last``; None if the repository does not exist."""

    async def referrers(
        self, repository: RepositoryName, subject: Digest, artifact_type: str | None
    ) -> list[Referrer]:
        """Manifests in ``repository`` whose subject is ``subject``, optionally filtered."""

    async def add_downloads(self, counts: dict[tuple[str, str], int]) -> None:
        """Add ``counts[(repository, digest)]`` to those versions' download counts."""


class UploadStore(Protocol):
    async def create(
        self,
        upload_id: str,
        repository: RepositoryName,
        *,
        owner: str = "",
        limit: int | None = None,
        live_since: datetime | None = None,
    ) -> Upload:
        """Record a new upload session of ``owner``. With ``limit``: raise TooManyUploads (and
        record nothing) if ``owner`` already has ``limit`` sessions touched at or after
        ``live_since`` (older ones have expired and don't count). Holds across processes."""

    async def get(self, upload_id: str) -> Upload | None:
        """The session, or None."""

    async def touch(self, upload_id: str) -> None:
        """Mark activity now (postpones expiry)."""

    async def delete(self, upload_id: str) -> None:
        """Forget the session. Idempotent."""

    async def expired(self, before: datetime) -> list[str]:
        """Ids of sessions idle since before ``before``."""


# -- accounts, tokens and package access ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    """A user (``type`` User) or an organization (``type`` Organization)."""

    id: int
    login: str
    type: str
    email: str | None
    password_hash: str | None
    site_admin: bool
    suspended: bool
    #: Organizations: visibilities members may create packages with.
    package_visibilities: frozenset[str]
    #: Organizations: whether new packages inherit access from their source repository.
    inherit_access_default: bool

    @property
    def is_org(self) -> bool:
        return self.type == "Organization"


@dataclass(frozen=True, slots=True)
class SourceRepository:
    id: int
    owner_id: int
    owner: str
    name: str
    private: bool
    owner_type: str = "User"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    kind: str
    #: SHA-256 of the token (the token itself is never stored).
    token_hash: str
    user_id: int | None
    scopes: tuple[str, ...]
    note: str | None
    source_repository_id: int | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class PackageAccess:
    """What decides who may reach a package."""

    id: int
    name: str
    owner_id: int | None
    visibility: str
    source_repository_id: int | None
    inherit_access: bool
    published_by_repository_id: int | None


@dataclass(frozen=True, slots=True)
class UserPackageFacts:
    """Everything that gives one user a role on one package."""

    #: Roles granted on the package to the user or to teams the user is in.
    grants: tuple[str, ...]
    #: ``owner`` or ``member`` of the organization owning the package, if any.
    org_role: str | None
    #: Roles on the linked source repository (when the package inherits access).
    source_roles: tuple[str, ...]


class AccountStore(Protocol):
    """Users, organizations, teams and source repositories. Logins are stored lower-case."""

    async def by_login(self, login: str) -> Account | None: ...
    async def by_id(self, account_id: int) -> Account | None: ...
    async def org_role(self, org_id: int, user_id: int) -> str | None: ...
    async def source_repository(self, repository_id: int) -> SourceRepository | None: ...
    async def source_repository_by_name(self, owner: str, name: str) -> SourceRepository | None: ...
    async def source_roles(self, repository_id: int, user_id: int) -> tuple[str, ...]: ...


class TokenStore(Protocol):
    """Token records, found by the SHA-256 of the token; the token itself is never stored."""

    async def by_hash(self, token_hash: str) -> TokenRecord | None: ...
    async def by_id(self, token_id: int) -> TokenRecord | None: ...
    async def revoke(self, token_id: int) -> bool: ...
    async def touch(self, token_id: int) -> None: ...


class PackageAccessStore(Protocol):
    async def get(self, name: str) -> PackageAccess | None:
        """The package named ``name`` (a registry repository name), or None."""

    async def user_facts(self, package: PackageAccess, user_id: int) -> UserPackageFacts: ...
    async def actions_grant(self, package_id: int, repository_id: int) -> str | None:
        """The role granted to a source repository's workflows ('Actions access'), if any."""

    async def create(
        self,
        name: str,
        *,
        owner_id: int,
        visibility: str,
        inherit_access: bool,
        source_repository_id: int | None,
        published_by_repository_id: int | None,
        admin_user_id: int | None,
    ) -> PackageAccess:
        """Create the package unless it exists (then return it unchanged); the creating user
        gets the admin role."""


# -- packages and versions ------------------------------------------------------------------


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
