"""Helpers of the S3BlobStore suites: looks into the bucket behind the store's back, and data."""

from __future__ import annotations

import hashlib

from cargobay.storage.s3 import S3BlobStore

MIB = 1024 * 1024


def keys(store: S3BlobStore, under: str = "") -> list[str]:
    """Every object key in the store's bucket (under ``under``), sorted."""
    listed = store.s3.client.list_objects_v2(Bucket=store.s3.bucket, Prefix=under)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def multipart_uploads(store: S3BlobStore) -> list[str]:
    """Keys of the unfinished multipart uploads in the store's bucket."""
    listed = store.s3.client.list_multipart_uploads(Bucket=store.s3.bucket)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ from MiB to MiB (cheaper than os.urandom for big sizes)."""
    block = hashlib.sha512(str(seed).encode()).digest() * (MIB // 64)
    return b"".join(block[i % 64 :] + block[: i % 64] for i in range(size // MIB + 1))[:size]
