"""Completing an S3 upload session: the tail as the last part, re-hashing, server-side copies.

Functions over the shared client (:class:`S3Calls`) and the layout (:class:`Keys`); the store
(:mod:`cargobay.storage.s3`) decides when each runs.

Stray parts: a request that failed after uploading parts (a size error, a lost race, a crash
after a checkpoint) leaves parts numbered after the session's own. AWS S3 completes an upload
with any subset of its parts, but Ceph RGW insists on all of them: so the upload is completed
with every part there is (the tail last), and only the ranges holding the session's bytes are
hashed and copied to the blob.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from botocore.exceptions import ClientError

from cargobay.errors import BlobUploadInvalid
from cargobay.oci.digest import new_hasher
from cargobay.storage.s3_client import S3Calls, error_code, is_missing
from cargobay.storage.s3_state import MAX_PARTS, MIN_PART, Keys, UploadState

#: Largest object one CopyObject copies, and the largest part UploadPartCopy takes.
COPY_LIMIT = 5 * 1024**3
#: Parts of a copy made of UploadPartCopy requests, and how many run at once.
COPY_PART = 512 * 1024 * 1024
COPY_IN_FLIGHT = 4
HASH_CHUNK = 4 * 1024 * 1024
CONTENT_TYPE = "application/octet-stream"
CONCURRENT_WRITER = "another request is writing to this upload"
PARTS_REPLACED = "the upload's parts were replaced by a concurrent request; start again"

Ranges = list[tuple[int, int]]


class DamagedUpload(Exception):
    """The bytes stored for a session are not the ones it counted; it can't be committed."""


async def read_segments(
    s3: S3Calls, keys: Keys, upload_id: str, segments: list[tuple[str, int]]
) -> bytes:
    """The tail segments' bytes, in order (< 5 MiB in all). Raises BlobUploadInvalid if one
    is gone (another request folded it into a part), DamagedUpload if one holds other than
    the bytes counted."""
    pieces = []
    for name, size in segments:
        found = await s3.get_bytes(keys.segment(upload_id, name))
        if found is None:
            raise BlobUploadInvalid(CONCURRENT_WRITER)
        if len(found[0]) != size:  # segments are never rewritten: the store lost bytes
            raise DamagedUpload(f"segment {name} holds {len(found[0])} bytes, not {size}")
        pieces.append(found[0])
    return b"".join(pieces)


def hexdigest(algorithm: str, data: bytes) -> str:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return hasher.hexdigest()


async def object_size(s3: S3Calls, key: str) -> int | None:
    try:
        head = await s3.run(s3.client.head_object, Bucket=s3.bucket, Key=key)
    except ClientError as e:
        if is_missing(e):
            return None
        raise
    return int(head["ContentLength"])


async def list_parts(s3: S3Calls, key: str, multipart: str) -> dict[int, tuple[str, int]]:
    """Every uploaded part: number -> (ETag, size)."""
    parts: dict[int, tuple[str, int]] = {}
    marker = 0
    while True:
        page = await s3.run(
            s3.client.list_parts,
            Bucket=s3.bucket,
            Key=key,
            UploadId=multipart,
            PartNumberMarker=marker,
        )
        for part in page.get("Parts", []):
            parts[part["PartNumber"]] = (part["ETag"], part["Size"])
        if not page.get("IsTruncated"):
            return parts
        marker = page["NextPartNumberMarker"]


async def complete(s3: S3Calls, keys: Keys, upload_id: str, state: UploadState) -> Ranges:
    """Complete the multipart upload into the ``data`` object, the tail as its last part.
    Returns where the session's bytes are in it ([] for all of it; see the module docstring).

    Raises BlobUploadInvalid if one of the session's parts was replaced (a concurrent request).
    Completing twice is fine: a data object of the right size means an earlier commit got here.
    """
    key = keys.data(upload_id)
    multipart = state.multipart or ""
    try:
        stored = await list_parts(s3, key, multipart)
        own = len(state.parts)
        for number, (etag, size) in enumerate(state.parts, 1):
            found_etag, found_size = stored.get(number, ("", 0))
            if found_etag != etag:
                raise BlobUploadInvalid(PARTS_REPLACED)
            if found_size != size:
                # The store holds fewer (or other) bytes than the session counted: this must
                # never become a blob. Cheap: the listing above carries every part's size.
                raise DamagedUpload(f"part {number} holds {found_size} bytes, not {size}")
        strays = sorted(n for n in stored if n > own)
        parts = [(n, etag) for n, (etag, _) in enumerate(state.parts, 1)]
        parts += [(n, stored[n][0]) for n in strays]
        tail_size = 0
        if state.segments:
            # Over the stray part an earlier attempt to commit left, else after every part.
            number = own + 1 if strays in ([], [own + 1]) else strays[-1] + 1
            if number > MAX_PARTS:
                raise BlobUploadInvalid("the upload has too many parts; start again")
            tail = await read_segments(s3, keys, upload_id, state.segments)
            response = await s3.run(
                s3.client.upload_part,
                Bucket=s3.bucket,
                Key=key,
                UploadId=multipart,
                PartNumber=number,
                Body=tail,
                ContentLength=len(tail),
            )
            parts = [(n, etag) for n, etag in parts if n != number] + [(number, response["ETag"])]
            strays = [n for n in strays if n != number]
            tail_size = len(tail)
        if any(stored[n][1] < MIN_PART for n in strays):
            raise BlobUploadInvalid("the upload has unusable parts; start again")
        await s3.run(
            s3.slow.complete_multipart_upload,
            Bucket=s3.bucket,
            Key=key,
            UploadId=multipart,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
        )
    except ClientError as e:
        if is_missing(e) and await object_size(s3, key) == state.size:
            return []
        if is_missing(e) or error_code(e) in {"InvalidPart", "InvalidPartOrder"}:
            raise BlobUploadInvalid(PARTS_REPLACED) from None
        raise
    if not strays:
        return []
    own_size = sum(size for _, size in state.parts)
    ranges = [(0, own_size)]
    if tail_size:
        ranges.append((own_size + sum(stored[n][1] for n in strays), tail_size))
    return ranges


async def hash_object(s3: S3Calls, key: str, algorithm: str, ranges: Ranges) -> str:
    """The hex digest of an object's bytes (of ``ranges`` of them, if given), streamed."""
    hasher = new_hasher(algorithm)
    for start, length in ranges or [(0, -1)]:
        kwargs: dict[str, Any] = {"Bucket": s3.bucket, "Key": key}
        if length >= 0:
            kwargs["Range"] = f"bytes={start}-{start + length - 1}"
        response = await s3.run(s3.client.get_object, **kwargs)
        with response["Body"] as body:
            while data := await s3.run(body.read, HASH_CHUNK):
                await anyio.to_thread.run_sync(hasher.update, data)
    return hasher.hexdigest()


def copy_parts(ranges: Ranges) -> Ranges:
    """``ranges`` cut into UploadPartCopy parts of at most about COPY_PART bytes, none but the
    last smaller than S3's minimum part (a short end of a range joins the piece before it)."""
    pieces: Ranges = []
    for start, length in ranges:
        cut = [
            (o, min(COPY_PART, start + length - o)) for o in range(start, start + length, COPY_PART)
        ]
        if len(cut) > 1 and cut[-1][1] < MIN_PART:
            last = cut.pop()
            cut[-1] = (cut[-1][0], cut[-1][1] + last[1])
        pieces += cut
    return pieces


async def copy(s3: S3Calls, source: str, target: str, size: int, ranges: Ranges) -> None:
    """Server-side copy of ``source`` (its ``ranges``, if given) to ``target``: one CopyObject
    up to 5 GiB, else UploadPartCopy parts in parallel."""
    copy_source = {"Bucket": s3.bucket, "Key": source}
    if not ranges and size <= COPY_LIMIT:
        await s3.run(
            s3.slow.copy_object,
            Bucket=s3.bucket,
            Key=target,
            CopySource=copy_source,
            ContentType=CONTENT_TYPE,
            MetadataDirective="REPLACE",
        )
        return
    pieces = copy_parts(ranges or [(0, size)])
    created = await s3.run(
        s3.client.create_multipart_upload, Bucket=s3.bucket, Key=target, ContentType=CONTENT_TYPE
    )
    multipart = created["UploadId"]
    etags: dict[int, str] = {}
    slots = anyio.Semaphore(COPY_IN_FLIGHT)

    async def copy_part(number: int, start: int, length: int) -> None:
        async with slots:
            response = await s3.run(
                s3.slow.upload_part_copy,
                Bucket=s3.bucket,
                Key=target,
                UploadId=multipart,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceRange=f"bytes={start}-{start + length - 1}",
            )
            etags[number] = response["CopyPartResult"]["ETag"]

    try:
        async with anyio.create_task_group() as tasks:
            for number, (start, length) in enumerate(pieces, 1):
                tasks.start_soon(copy_part, number, start, length)
        await s3.run(
            s3.slow.complete_multipart_upload,
            Bucket=s3.bucket,
            Key=target,
            UploadId=multipart,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]},
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await s3.run(
                s3.client.abort_multipart_upload, Bucket=s3.bucket, Key=target, UploadId=multipart
            )
        raise
