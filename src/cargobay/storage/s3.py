"""Blobs in an S3 bucket (AWS S3, Ceph RGW, MinIO, ...). Layout: :mod:`cargobay.storage.s3_state`.

Upload sessions live only in the bucket, so any replica continues any upload, also after the
replica that started it died: an S3 multipart upload, tail segments and a state object carrying
the saved SHA-256 state (see :mod:`cargobay.storage.s3_append`).

A blob appears only after its digest was verified: small blobs (no part yet) are put in one
request, larger ones are completed into ``uploads/<id>/data`` and copied server-side to their
blob key. Blobs are served through presigned URLs when redirects are on.

Concurrent writers: S3 has no locks. Each append replaces the state object with ``If-Match`` on
the ETag it read (Ceph RGW and AWS S3 honour it), so of two requests writing one session at the
same time, the one that saves second gets BlobUploadInvalid and its bytes are dropped: unlike
the filesystem store, the second request is refused when it ends, not when it starts. If both
uploaded the same part number, S3 may keep the loser's part; the commit then finds its ETag is
not the one the state names and fails with BlobUploadInvalid (the client starts again): a wrong
blob never appears.

Clean-up: a session's objects are removed with it (commit, abort, expiry); multipart uploads of
requests that died before saving anything are found by :meth:`S3BlobStore.abort`. A bucket
lifecycle rule aborting incomplete multipart uploads after a few days catches any other.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from botocore.exceptions import ClientError

from cargobay.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    TooLarge,
    UploadOffsetMismatch,
)
from cargobay.oci.digest import Digest, algorithm_of, encoded_of
from cargobay.storage import hashing, s3_listing
from cargobay.storage.base import StoredBlob
from cargobay.storage.s3_append import AppendCall
from cargobay.storage.s3_client import (
    S3Calls,
    error_code,
    is_missing,
    is_precondition_failed,
    status_of,
    unquote_etag,
)
from cargobay.storage.s3_commit import (
    CONCURRENT_WRITER,
    CONTENT_TYPE,
    DamagedUpload,
    complete,
    copy,
    hash_object,
    hexdigest,
    read_segments,
)
from cargobay.storage.s3_state import Keys, UploadState
from cargobay.storage.uploads import valid_upload_id

log = logging.getLogger(__name__)

#: Bytes per chunk when streaming a blob out.
READ_CHUNK = 1024 * 1024


class S3BlobStore:
    """``prefix`` is prepended to every key (``""`` or ending with ``/``). ``presign_expiry``:
    seconds a redirect URL stays valid; ``redirect``: hand out such URLs at all."""

    def __init__(
        self, s3: S3Calls, *, prefix: str = "", presign_expiry: int = 300, redirect: bool = True
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.s3 = s3
        self.keys = Keys(prefix)
        self.presign_expiry = presign_expiry
        self.redirect = redirect

    # -- blobs -----------------------------------------------------------------------------

    async def ready(self) -> None:
        """The bucket answers (a HEAD: no write per probe, a PUT would cost on every check)."""
        await self.s3.ping()

    async def stat(self, digest: Digest) -> int | None:
        try:
            head = await self.s3.run(
                self.s3.client.head_object, Bucket=self.s3.bucket, Key=self.keys.blob(digest)
            )
        except ClientError as e:
            if is_missing(e):
                return None
            raise
        return int(head["ContentLength"])

    def local_path(self, digest: Digest) -> str | None:
        return None

    async def read(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if length == 0:
            if await self.stat(digest) is None:
                raise BlobUnknown(detail={"digest": digest})
            return
        kwargs: dict[str, Any] = {"Bucket": self.s3.bucket, "Key": self.keys.blob(digest)}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{end}"
        try:
            response = await self.s3.run(self.s3.client.get_object, **kwargs)
        except ClientError as e:
            if is_missing(e):
                raise BlobUnknown(detail={"digest": digest}) from None
            if status_of(e) == 416 or error_code(e) == "InvalidRange":
                return  # nothing at or after ``offset``
            raise
        body = response["Body"]
        try:
            while True:
                data = await self.s3.run(body.read, READ_CHUNK)
                if not data:
                    break
                yield data
        finally:
            body.close()

    async def redirect_url(self, digest: Digest) -> str | None:
        if not self.redirect:
            return None
        # Signing is local computation: no request to S3.
        return self.s3.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.s3.bucket, "Key": self.keys.blob(digest)},
            ExpiresIn=self.presign_expiry,
        )

    async def delete(self, digest: Digest) -> bool:
        if await self.stat(digest) is None:
            return False
        await self.s3.run(
            self.s3.client.delete_object, Bucket=self.s3.bucket, Key=self.keys.blob(digest)
        )
        return True

    async def iter_digests(self) -> AsyncIterator[Digest]:
        start = len(self.keys.blobs)
        async for key, _ in self.s3.iter_keys(self.keys.blobs):
            algorithm, _, encoded = key[start:].partition("/")
            if algorithm and encoded and "/" not in encoded:
                yield Digest(f"{algorithm}:{encoded}")

    def iter_blobs(self) -> AsyncIterator[StoredBlob]:
        return s3_listing.iter_blobs(self.s3, self.keys)

    # -- uploads ---------------------------------------------------------------------------

    def _check_id(self, upload_id: str) -> None:
        if not valid_upload_id(upload_id):
            raise BlobUploadUnknown(detail={"upload": upload_id[:64]})

    async def _load(self, upload_id: str) -> tuple[UploadState, str]:
        """The session's state and the ETag to replace it with. Raises BlobUploadUnknown."""
        self._check_id(upload_id)
        found = await self.s3.get_bytes(self.keys.state(upload_id))
        if found is None:
            raise BlobUploadUnknown(detail={"upload": upload_id})
        try:
            return UploadState.decode(found[0]), found[1]
        except ValueError as e:
            raise BlobUploadInvalid(str(e)) from None

    async def _put_state(self, upload_id: str, state: UploadState, **condition: str) -> None:
        await self.s3.run(
            self.s3.client.put_object,
            Bucket=self.s3.bucket,
            Key=self.keys.state(upload_id),
            Body=state.encode(),
            ContentType="application/json",
            **condition,
        )

    async def start_upload(self, upload_id: str) -> None:
        if not valid_upload_id(upload_id):
            raise BlobUploadInvalid("bad upload id")
        fresh = hashing.new()
        state = UploadState(hash=fresh.state() if fresh else None)
        try:
            await self._put_state(upload_id, state, IfNoneMatch="*")
        except ClientError as e:
            if is_precondition_failed(e):
                raise BlobUploadInvalid("upload id already in use") from None
            raise

    async def upload_size(self, upload_id: str) -> int:
        state, _ = await self._load(upload_id)
        return state.size

    async def append(
        self,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        offset: int | None,
        max_size: int,
        length: int | None = None,
    ) -> int:
        state, etag = await self._load(upload_id)
        if state.sealed:
            raise BlobUploadInvalid("the upload is closed")
        if offset is not None and offset != state.size:
            raise UploadOffsetMismatch(size=state.size)
        if length is not None and state.size + length > max_size:
            raise TooLarge(limit=max_size)
        call = AppendCall(self.s3, self.keys, upload_id, state, etag)
        try:
            went_away = await call.receive(chunks, max_size=max_size, length=length)
        except DamagedUpload as e:
            raise await self._damaged(upload_id, e) from e
        if went_away is not None:
            with anyio.CancelScope(shield=True):
                await call.save()  # keep the valid prefix received before the client went away
            raise went_away
        return await call.save()

    async def _damaged(self, upload_id: str, error: DamagedUpload) -> BlobUploadUnknown:
        """The store lost bytes the session counted: the session is removed (it could only
        make a wrong blob); the client starts again."""
        log.error("upload %s removed: %s", upload_id, error)
        with anyio.CancelScope(shield=True):
            await self.abort(upload_id)
        return BlobUploadUnknown(
            "the upload's stored bytes were damaged; start again", {"upload": upload_id}
        )

    async def commit(self, upload_id: str, digest: Digest) -> int:
        state, etag = await self._load(upload_id)
        algorithm = algorithm_of(digest)
        if not state.parts and not state.sealed:
            # Small: the tail alone (< 5 MiB). Hash exactly the bytes that are put.
            try:
                data = await read_segments(self.s3, self.keys, upload_id, state.segments)
            except DamagedUpload as e:
                raise await self._damaged(upload_id, e) from e
            actual = await anyio.to_thread.run_sync(hexdigest, algorithm, data)
            self._verify(digest, actual)
            await self._put_blob(digest, data)
            await self._remove(upload_id)
            return state.size
        verified = False
        # A state this replica can't restore (another libcrypto, none): the object is re-hashed.
        hasher = hashing.restore(state.hash) if algorithm == "sha256" else None
        if hasher is not None:
            self._verify(digest, hasher.hexdigest())
            verified = True
        if await self.stat(digest) is not None:
            await self.abort(upload_id)
            return state.size
        if not state.sealed:
            try:
                ranges = await complete(self.s3, self.keys, upload_id, state)
            except DamagedUpload as e:
                raise await self._damaged(upload_id, e) from e
            sealed = UploadState(size=state.size, hash=state.hash, sealed=True, ranges=ranges)
            try:
                await self._put_state(upload_id, sealed, IfMatch=unquote_etag(etag))
            except ClientError as e:
                if is_precondition_failed(e):
                    raise BlobUploadInvalid(CONCURRENT_WRITER) from None
                raise
            state = sealed  # the tail segments now in the data object go with the session
        data_key = self.keys.data(upload_id)
        if not verified:
            actual = await hash_object(self.s3, data_key, algorithm, state.ranges)
            self._verify(digest, actual)
        await copy(self.s3, data_key, self.keys.blob(digest), state.size, state.ranges)
        await self._remove(upload_id)
        return state.size

    async def _remove(self, upload_id: str) -> None:
        """Delete every object of a session (also those a crashed request left), state last:
        a session is gone only when nothing else of it is left."""
        state = self.keys.state(upload_id)
        keys = [key async for key, _ in self.s3.iter_keys(self.keys.upload(upload_id))]
        await self.s3.delete_keys([key for key in keys if key != state])
        await self.s3.delete_keys([state])

    @staticmethod
    def _verify(digest: Digest, actual: str) -> None:
        if actual != encoded_of(digest):
            raise DigestInvalid(
                "provided digest did not match uploaded content",
                {"expected": digest, "actual": f"{algorithm_of(digest)}:{actual}"},
            )

    async def _put_blob(self, digest: Digest, data: bytes) -> None:
        """Written once: a blob that exists (same digest, same bytes) is left as it is."""
        try:
            await self.s3.run(
                self.s3.bulk.put_object,
                Bucket=self.s3.bucket,
                Key=self.keys.blob(digest),
                Body=data,
                ContentLength=len(data),
                ContentType=CONTENT_TYPE,
                IfNoneMatch="*",
            )
        except ClientError as e:
            if not is_precondition_failed(e):
                raise

    async def abort(self, upload_id: str) -> None:
        if not valid_upload_id(upload_id):
            return
        listed = await self.s3.run(
            self.s3.client.list_multipart_uploads,
            Bucket=self.s3.bucket,
            Prefix=self.keys.upload(upload_id),
        )
        for upload in listed.get("Uploads", []):
            try:
                await self.s3.run(
                    self.s3.client.abort_multipart_upload,
                    Bucket=self.s3.bucket,
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
            except ClientError as e:
                if not is_missing(e):
                    raise
        await self._remove(upload_id)

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        start = len(self.keys.uploads)
        async for key, modified in self.s3.iter_keys(self.keys.uploads):
            upload_id, _, name = key[start:].partition("/")
            if name == "state" and valid_upload_id(upload_id):
                yield upload_id, modified

    def iter_upload_leftovers(self) -> AsyncIterator[tuple[str, float]]:
        return s3_listing.iter_leftovers(self.s3, self.keys)
