"""Blobs in process memory: the fake for tests. Same contract as every other store."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

from cargobay.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    SizeInvalid,
    TooLarge,
    UploadOffsetMismatch,
)
from cargobay.oci.digest import Digest, algorithm_of, encoded_of
from cargobay.storage.base import StoredBlob
from cargobay.storage.uploads import valid_upload_id


@dataclass
class _Upload:
    data: bytearray = field(default_factory=bytearray)
    modified: float = field(default_factory=time.time)
    busy: bool = False


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[Digest, bytes] = {}
        self._written: dict[Digest, float] = {}
        self._uploads: dict[str, _Upload] = {}

    async def ready(self) -> None:
        return None

    async def stat(self, digest: Digest) -> int | None:
        blob = self._blobs.get(digest)
        return None if blob is None else len(blob)

    def local_path(self, digest: Digest) -> str | None:
        return None

    async def read(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        blob = self._blobs.get(digest)
        if blob is None:
            raise BlobUnknown(detail={"digest": digest})
        end = len(blob) if length is None else offset + length
        yield blob[offset:end]

    async def redirect_url(self, digest: Digest) -> str | None:
        return None

    async def delete(self, digest: Digest) -> bool:
        self._written.pop(digest, None)
        return self._blobs.pop(digest, None) is not None

    async def iter_digests(self) -> AsyncIterator[Digest]:
        for digest in list(self._blobs):
            yield digest

    async def iter_blobs(self) -> AsyncIterator[StoredBlob]:
        for digest, blob in list(self._blobs.items()):
            yield StoredBlob(digest, len(blob), self._written.get(digest, 0.0))

    def _get(self, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id) if valid_upload_id(upload_id) else None
        if upload is None:
            raise BlobUploadUnknown(detail={"upload": upload_id[:64]})
        return upload

    async def start_upload(self, upload_id: str) -> None:
        if not valid_upload_id(upload_id) or upload_id in self._uploads:
            raise BlobUploadInvalid("bad upload id")
        self._uploads[upload_id] = _Upload()

    async def upload_size(self, upload_id: str) -> int:
        return len(self._get(upload_id).data)

    async def append(
        self,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        offset: int | None,
        max_size: int,
        length: int | None = None,
    ) -> int:
        upload = self._get(upload_id)
        if upload.busy:
            raise BlobUploadInvalid("another request is writing to this upload")
        start = len(upload.data)
        if offset is not None and offset != start:
            raise UploadOffsetMismatch(size=start)
        if length is not None and start + length > max_size:
            raise TooLarge(limit=max_size)
        upload.busy = True
        try:
            async for chunk in chunks:
                if len(upload.data) + len(chunk) > max_size:
                    del upload.data[start:]
                    raise TooLarge(limit=max_size)
                upload.data += chunk
            if length is not None and len(upload.data) - start != length:
                received = len(upload.data) - start
                del upload.data[start:]
                raise SizeInvalid(
                    f"received {received} bytes, expected {length}",
                    {"received": received, "expected": length},
                )
        finally:
            upload.busy = False
            upload.modified = time.time()
        return len(upload.data)

    async def commit(self, upload_id: str, digest: Digest) -> int:
        upload = self._get(upload_id)
        algorithm = algorithm_of(digest)
        actual = hashlib.new(algorithm, upload.data).hexdigest()
        if actual != encoded_of(digest):
            raise DigestInvalid(
                "provided digest did not match uploaded content",
                {"expected": digest, "actual": f"{algorithm}:{actual}"},
            )
        if digest not in self._blobs:
            self._blobs[digest] = bytes(upload.data)
            self._written[digest] = time.time()
        del self._uploads[upload_id]
        return len(upload.data)

    async def abort(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        for upload_id, upload in list(self._uploads.items()):
            yield upload_id, upload.modified

    async def iter_upload_leftovers(self) -> AsyncIterator[tuple[str, float]]:
        return
        yield  # an upload's data lives and dies with its session here
