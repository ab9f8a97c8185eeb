"""Metadata store protocols, split by aggregate, and the frozen values they return.

Each method is one transaction. Every implementation passes ``tests/contract/test_metadata.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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
        """Link a stored blob into ``repository`` (creating the repository). Idempotent."""

    async def unlink(self, repository: RepositoryName, digest: Digest) -> bool:
        """Remove the link. True if there was one."""


class ManifestStore(Protocol):
    async def get(self, repository: RepositoryName, reference: Digest | Tag) -> Manifest | None:
        """The manifest a digest or a tag names in ``repository``, or None."""

    async def put(self, repository: RepositoryName, manifest: NewManifest, tag: Tag | None) -> None:
        """Store ``manifest`` (idempotent for the same digest) and point ``tag`` at it, atomically.

        In the same transaction checks that every ``manifest.blobs`` is linked in the repository
        (else ManifestBlobUnknown) and every ``manifest.manifests`` exists there (else
        ManifestUnknown); on error nothing changes.
        """

    async def delete(self, repository: RepositoryName, digest: Digest) -> bool:
        """Delete the manifest and every tag pointing at it. True if it existed."""

    async def delete_tag(self, repository: RepositoryName, tag: Tag) -> bool:
        """Delete only the tag. True if it existed."""

    async def list_tags(
        self, repository: RepositoryName, *, last: str | None, limit: int
    ) -> list[Tag] | None:
        """Tags in lexical order after ``last``; None if the repository does not exist."""

    async def referrers(
        self, repository: RepositoryName, subject: Digest, artifact_type: str | None
    ) -> list[Referrer]:
        """Manifests in ``repository`` whose subject is ``subject``, optionally filtered."""


class UploadStore(Protocol):
    async def create(self, upload_id: str, repository: RepositoryName) -> Upload:
        """Record a new upload session."""

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
