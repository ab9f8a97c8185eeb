"""The BlobStore protocol: content-addressed bytes and the upload sessions that create them.

Every implementation passes ``tests/contract/test_blobstore.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from cargobay.oci.digest import Digest


@dataclass(frozen=True, slots=True)
class StoredBlob:
    digest: Digest
    size: int
    #: When the bytes were written (epoch seconds).
    modified: float


#: Upload ids are 32 lowercase hex characters (a UUID4 without dashes), made by the caller.
UPLOAD_ID_LENGTH = 32


class BlobStore(Protocol):
    """Bytes only: no repositories, no metadata. Digests passed in are already validated."""

    async def ready(self) -> None:
        """Raise Unavailable (or OSError) unless the store can be read and written now."""

    async def stat(self, digest: Digest) -> int | None:
        """Size of the blob in bytes, or None if it is not stored."""

    def local_path(self, digest: Digest) -> str | None:
        """A path for zero-copy sends, if the blob is a local file (else None). Does not stat."""

    def read(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (to the end if None) from ``offset``. Raises BlobUnknown."""

    async def redirect_url(self, digest: Digest) -> str | None:
        """A URL a client can fetch the blob from directly (presigned), or None to stream."""

    async def delete(self, digest: Digest) -> bool:
        """Remove the blob's bytes. Idempotent; True if something was removed."""

    def iter_digests(self) -> AsyncIterator[Digest]:
        """Every stored blob digest, in no particular order."""

    def iter_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every stored blob with its size and when it was written, in no particular order
        (what the garbage collector compares with the metadata)."""

    async def start_upload(self, upload_id: str) -> None:
        """Create an empty upload session ``upload_id``."""

    async def upload_size(self, upload_id: str) -> int:
        """Bytes received so far. Raises BlobUploadUnknown."""

    async def append(
        self,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        offset: int | None,
        max_size: int,
        length: int | None = None,
    ) -> int:
        """Append ``chunks`` and return the new size.

        ``offset`` None appends at the end (streamed upload); otherwise it must equal the current
        size, else UploadOffsetMismatch(size) and nothing is written. If the total would exceed
        ``max_size``: TooLarge; if ``length`` is given and a different number of bytes arrived:
        SizeInvalid; either way what this call wrote is discarded. If ``chunks`` raises (the
        client went away), the bytes received until then stay: they are a valid prefix the client
        can resume from. Raises BlobUploadUnknown, and BlobUploadInvalid if another request is
        writing to the same upload.
        """

    async def commit(self, upload_id: str, digest: Digest) -> int:
        """Verify the upload's content against ``digest`` and make it the blob ``digest``
        atomically (durably: the bytes are on disk before it becomes visible). Returns its size
        and removes the session. If the blob already exists the upload is discarded. Raises
        DigestInvalid if the content does not match (the session is left for the caller to
        abort), BlobUploadUnknown.
        """

    async def abort(self, upload_id: str) -> None:
        """Remove the session and its data. Idempotent."""

    def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        """Every upload session as (id, last-modified epoch seconds)."""

    def iter_upload_leftovers(self) -> AsyncIterator[tuple[str, float]]:
        """Upload data that belongs to no session ``iter_uploads`` lists (e.g. S3 multipart
        uploads and pieces of a request that died before its session was written), as (upload
        id, last-modified epoch seconds). ``abort(id)`` removes it."""
