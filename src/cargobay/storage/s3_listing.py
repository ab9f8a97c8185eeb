"""Listings of an S3 store for the garbage collector: every blob with its size and age, and
upload data no session owns (multipart uploads and pieces whose state object was never
written, or was removed before them). Layout: :mod:`cargobay.storage.s3_state`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cargobay.oci.digest import Digest
from cargobay.storage.base import StoredBlob
from cargobay.storage.s3_client import S3Calls
from cargobay.storage.s3_state import Keys
from cargobay.storage.uploads import valid_upload_id


async def _objects(s3: S3Calls, prefix: str) -> AsyncIterator[Any]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": s3.bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = await s3.run(s3.client.list_objects_v2, **kwargs)
        for item in page.get("Contents", []):
            yield item
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")


async def iter_blobs(s3: S3Calls, keys: Keys) -> AsyncIterator[StoredBlob]:
    start = len(keys.blobs)
    async for item in _objects(s3, keys.blobs):
        algorithm, _, encoded = item["Key"][start:].partition("/")
        if algorithm and encoded and "/" not in encoded:
            yield StoredBlob(
                Digest(f"{algorithm}:{encoded}"),
                int(item["Size"]),
                item["LastModified"].timestamp(),
            )


async def iter_leftovers(s3: S3Calls, keys: Keys) -> AsyncIterator[tuple[str, float]]:
    """(upload id, newest modification) of upload data under ``uploads/`` without a state."""
    start = len(keys.uploads)
    with_state: set[str] = set()
    newest: dict[str, float] = {}

    def seen(upload_id: str, at: float) -> None:
        if valid_upload_id(upload_id):
            newest[upload_id] = max(newest.get(upload_id, 0.0), at)

    async for item in _objects(s3, keys.uploads):
        upload_id, _, name = item["Key"][start:].partition("/")
        if name == "state":
            with_state.add(upload_id)
        seen(upload_id, item["LastModified"].timestamp())
    key_marker: str | None = None
    id_marker: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": s3.bucket, "Prefix": keys.uploads}
        if key_marker:
            kwargs["KeyMarker"] = key_marker
            kwargs["UploadIdMarker"] = id_marker or ""
        page = await s3.run(s3.client.list_multipart_uploads, **kwargs)
        for upload in page.get("Uploads", []):
            seen(upload["Key"][start:].partition("/")[0], upload["Initiated"].timestamp())
        if not page.get("IsTruncated"):
            break
        key_marker = page.get("NextKeyMarker")
        id_marker = page.get("NextUploadIdMarker")
    for upload_id, at in newest.items():
        if upload_id not in with_state:
            yield upload_id, at
