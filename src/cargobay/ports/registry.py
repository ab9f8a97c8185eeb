"""The registry's stores (repositories, blob links, manifests, upload sessions) and the frozen
values they return.

Each method is one transaction. Every implementation passes ``tests/contract/test_metadata.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag
from cargobay.ports.events import Event


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
