"""One boto3 S3 client shared by every request, called from worker threads.

boto3 is synchronous: each call runs in a thread (``anyio.to_thread``) under a capacity limiter
as large as the client's connection pool, so requests wait for a connection in the event loop,
not in a thread. boto3 clients are thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from cargobay.errors import InsufficientStorage, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Connections to S3 per process (and threads running S3 calls).
MAX_CONNECTIONS = 32


def make_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    max_connections: int = MAX_CONNECTIONS,
    kind: str = "fast",
) -> S3Client:
    """A client for AWS S3 (no endpoint) or an S3-compatible service at ``endpoint_url``
    (path-style addressing, as Ceph RGW and MinIO expect). Signature v4; retries with backoff;
    payload checksums only where S3 requires them (older gateways reject the newer ones).

    Timeouts are short, so a store that stops answering costs a request seconds, not minutes
    (the client gets 503 and retries): ``fast`` for small requests (5 s, no retry), ``bulk``
    for parts and pieces of uploads (30 s, one retry), ``slow`` for server-side copies and
    completions, which can take the store minutes for large blobs (900 s, two retries)."""
    read_timeout, attempts = {"fast": (5, 1), "bulk": (30, 2), "slow": (900, 3)}[kind]
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        max_pool_connections=max_connections,
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=3,
        read_timeout=read_timeout,
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    client: S3Client = session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=config,
    )
    return client


#: Answers of an object store that is full, or whose quota is (Ceph RGW: QuotaExceeded).
OUT_OF_SPACE_CODES = frozenset({"QuotaExceeded", "InsufficientStorage", "InsufficientCapacity"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def status_of(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_missing(error: ClientError) -> bool:
    """No such key, upload or bucket (HEAD answers a bare 404)."""
    return status_of(error) == 404 or error_code(error) in {"NoSuchKey", "NoSuchUpload", "404"}


def is_precondition_failed(error: ClientError) -> bool:
    """An ``If-Match``/``If-None-Match`` condition did not hold (or a conflicting write won)."""
    return status_of(error) in (409, 412) or error_code(error) in {
        "PreconditionFailed",
        "ConditionalRequestConflict",
    }


def unquote_etag(etag: str) -> str:
    """ETags as ``If-Match`` takes them: Ceph RGW compares the bare value."""
    return etag.strip('"')


class S3Calls:
    """The shared client, its bucket, and a bounded way to call it from async code."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        max_threads: int = MAX_CONNECTIONS,
        slow_client: S3Client | None = None,
        bulk_client: S3Client | None = None,
    ) -> None:
        self.client = client
        #: For calls the store may take minutes to answer (copies, completions).
        self.slow = slow_client or client
        #: For calls that send megabytes (parts, pieces, small blobs).
        self.bulk = bulk_client or client
        self.bucket = bucket
        self.limiter = anyio.CapacityLimiter(max_threads)

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in a worker thread, at most ``max_threads`` at once.
        S3 out of reach, or failing (5xx) after the retries, raises Unavailable."""

        def call() -> T:
            try:
                return function(*args, **kwargs)
            except (BotoConnectionError, HTTPClientError) as e:
                log.warning("S3 call %s failed: %s", getattr(function, "__name__", "?"), e)
                raise Unavailable("the blob store is unavailable") from e
            except ClientError as e:
                if status_of(e) == 507 or error_code(e) in OUT_OF_SPACE_CODES:
                    raise InsufficientStorage(
                        "the registry is out of storage",
                        where=f"the S3 blob store (bucket {self.bucket}) is out of space: "
                        f"{error_code(e) or status_of(e)}",
                    ) from e
                if status_of(e) >= 500:
                    log.warning("S3 call %s failed: %s", getattr(function, "__name__", "?"), e)
                    raise Unavailable("the blob store is unavailable") from e
                raise

        return await anyio.to_thread.run_sync(call, limiter=self.limiter)

    async def ping(self) -> None:
        """HEAD the bucket (reachable, credentials accepted). Raises Unavailable. The thread is
        abandoned if the caller gives up waiting (boto3 retries can take long)."""

        def head() -> None:
            self.client.head_bucket(Bucket=self.bucket)

        try:
            await anyio.to_thread.run_sync(head, abandon_on_cancel=True, limiter=self.limiter)
        except (BotoCoreError, ClientError) as e:
            log.warning("S3 bucket %r does not answer: %s", self.bucket, e)
            raise Unavailable("the blob store is unavailable") from e

    def ensure_bucket(self, region: str) -> None:
        """Create the bucket if it does not exist (synchronous: used at start-up)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as e:
            if not is_missing(e):
                raise
        try:
            if region and region != "us-east-1":
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                self.client.create_bucket(Bucket=self.bucket)
        except ClientError as e:
            if error_code(e) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    async def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """A small object's bytes and ETag, or None if it does not exist."""

        def get() -> tuple[bytes, str] | None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as e:
                if is_missing(e):
                    return None
                raise
            with response["Body"] as body:
                return body.read(), response["ETag"]

        return await self.run(get)

    async def delete_keys(self, keys: list[str]) -> None:
        """Delete objects (missing ones are fine), up to 1000 per request."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            await self.run(
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )

    async def iter_keys(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        """Every (key, last-modified epoch) under ``prefix``, a page (1000 keys) at a time."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self.run(self.client.list_objects_v2, **kwargs)
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"].timestamp()
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
