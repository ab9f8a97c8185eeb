"""Blob responses: zero-copy file sends where the server supports ASGI ``pathsend``, ranges."""

from __future__ import annotations

import re

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cargobay.errors import RangeInvalid
from cargobay.oci.numbers import parse_unsigned
from cargobay.services.blobs import BlobInfo, BlobService

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def _position(digits: str) -> int:
    """A byte position from a header's ASCII digits; one too long to read is past any blob."""
    value = parse_unsigned(digits)
    return 1 << 63 if value is None else value


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``(start, end)`` inclusive a ``Range`` header asks for, or None for all.

    RFC 9110 §14.1.2: a single range ``a-b``, ``a-`` or ``-n``; an end past the size is cut to
    it. Several ranges or an unknown unit are ignored (the whole blob is sent). Raises
    RangeInvalid when no byte of the range exists.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = _position(first)
        end = _position(last) if last else size - 1
        if last and end < start:
            return None  # syntactically invalid: ignore, per RFC 9110
        if start >= size:
            raise RangeInvalid(f"range start {start} is beyond the blob size {size}", size=size)
        return start, min(end, size - 1)
    suffix = _position(last)
    if suffix == 0 or size == 0:
        raise RangeInvalid("empty suffix range", size=size)
    return max(size - suffix, 0), size - 1


class RawResponse(Response):
    """A response built from already-encoded headers: nothing to normalise per request."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body
        self.background = None


class BlobResponse:
    """The bytes of a blob (or a range of them) with the registry's blob headers."""

    def __init__(
        self,
        info: BlobInfo,
        blobs: BlobService,
        byte_range: tuple[int, int] | None,
        *,
        head: bool,
    ) -> None:
        self.info = info
        self.blobs = blobs
        self.range = byte_range
        self.head = head

    def _headers(self, length: int) -> list[tuple[bytes, bytes]]:
        digest = self.info.digest.encode()
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(length).encode()),
            (b"docker-content-digest", digest),
            (b"etag", b'"' + digest + b'"'),
            (b"accept-ranges", b"bytes"),
            (b"x-content-type-options", b"nosniff"),
            # Bytes anyone may have pushed: never rendered or run by a browser.
            (b"content-security-policy", b"sandbox"),
            (b"content-disposition", b"attachment"),
            (b"cache-control", b"max-age=31536000"),
        ]
        if self.range:
            start, end = self.range
            headers.append((b"content-range", f"bytes {start}-{end}/{self.info.size}".encode()))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start, end = self.range or (0, self.info.size - 1)
        length = end - start + 1
        await send(
            {
                "type": "http.response.start",
                "status": 206 if self.range else 200,
                "headers": self._headers(length),
            }
        )
        if self.head or length <= 0:
            await send({"type": "http.response.body", "body": b""})
            return
        if (
            length == self.info.size  # the whole blob, asked for with or without a Range
            and self.info.path is not None
            and "http.response.pathsend" in scope.get("extensions", {})
        ):
            await send({"type": "http.response.pathsend", "path": self.info.path})
            return
        async for chunk in self.blobs.read(self.info.digest, start, length):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
