"""Reading, mounting and deleting blobs of a repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from cargobay.errors import BlobUnknown, QuotaExceeded
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName
from cargobay.ports.registry import BlobLinkStore
from cargobay.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int
    #: A local file to send zero-copy, if the store has one.
    path: str | None


class BlobService:
    def __init__(self, store: BlobStore, links: BlobLinkStore) -> None:
        self.store = store
        self.links = links

    async def info(self, repository: RepositoryName, digest: Digest) -> BlobInfo:
        """The blob as ``repository`` sees it. Raises BlobUnknown if it doesn't link it."""
        size = await self.links.linked_size(repository, digest)
        if size is None or await self.store.stat(digest) is None:
            raise BlobUnknown(detail={"digest": digest})
        return BlobInfo(digest, size, self.store.local_path(digest))

    async def redirect_url(self, digest: Digest) -> str | None:
        return await self.store.redirect_url(digest)

    def read(self, digest: Digest, offset: int, length: int) -> AsyncIterator[bytes]:
        return self.store.read(digest, offset, length)

    async def mount(
        self, repository: RepositoryName, digest: Digest, source: RepositoryName
    ) -> bool:
        """Link a blob of ``source`` into ``repository``. False if ``source`` doesn't have it,
        or if the namespace of ``repository`` has no room for it: the client then uploads it
        (the OCI spec's answer for a mount the registry does not make), and the quota is
        enforced when that upload is committed, with the message that says why."""
        if await self.store.stat(digest) is None:
            return False
        # One transaction: the source's link is checked and the new one added under the blob's
        # lock, so the garbage collector can't remove the blob in between.
        try:
            return await self.links.mount(repository, digest, source) is not None
        except QuotaExceeded:
            return False

    async def delete(self, repository: RepositoryName, digest: Digest) -> None:
        """Unlink the blob from ``repository``; its bytes stay for others until collected."""
        if not await self.links.unlink(repository, digest):
            raise BlobUnknown(detail={"digest": digest})
