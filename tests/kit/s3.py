"""S3 for tests: an endpoint (a Ceph RGW started by ``scripts/ceph-rgw``, or any S3 named by
the environment) with the credentials of a user allowed to create buckets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class S3Service:
    """An S3 endpoint and the credentials of a user allowed to create buckets on it."""

    endpoint: str
    access_key: str
    secret_key: str

    def settings(self, bucket: str, **more: Any) -> dict[str, Any]:
        """``server_factory`` settings for a registry storing its blobs in ``bucket``."""
        return {
            "blob_store": "s3",
            "s3_endpoint_url": self.endpoint,
            "s3_bucket": bucket,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            **more,
        }

    def client(self) -> Any:
        """A boto3 S3 client on the service (for checks behind the store's back)."""
        from cargobay.storage.s3_client import make_client

        return make_client(
            endpoint_url=self.endpoint,
            region="us-east-1",
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
        )

    def remove_bucket(self, bucket: str) -> None:
        """Delete ``bucket`` with every object and unfinished multipart upload in it."""
        client = self.client()
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)


def new_bucket_name() -> str:
    return f"cargobay-test-{uuid.uuid4().hex[:16]}"
