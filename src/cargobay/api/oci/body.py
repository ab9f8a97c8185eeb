"""Request bodies streamed straight from ASGI ``receive``, and drained after an early error.

A client that is still sending when the registry answers with an error would otherwise see the
connection reset instead of the error: after an error the rest of a body is read and discarded,
up to :data:`DRAIN_LIMIT` bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.requests import ClientDisconnect, Request

from cargobay.errors import CargobayError
from cargobay.oci.numbers import parse_unsigned

DRAIN_LIMIT = 64 * 1024 * 1024


class Body:
    def __init__(self, request: Request) -> None:
        self._receive = request.receive
        self._scope = request.scope
        self.done = False
        self.declared = parse_unsigned(request.headers.get("content-length"))
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        http1 = str(request.scope.get("http_version", "1.1")).startswith("1")
        if http1 and not chunked and not self.declared:
            self.done = True  # HTTP/1.x without Content-Length or chunking: no body at all

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._scope["cargobay.body"] = self
        while not self.done:
            message = await self._receive()
            if message["type"] == "http.request":
                if not message.get("more_body", False):
                    self.done = True
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
            elif message["type"] == "http.disconnect":
                self.done = True
                raise ClientDisconnect()

    async def read(self, limit: int, too_large: Callable[[], Exception]) -> bytes:
        """The whole body, refusing (``too_large()``) one declared or found to be over
        ``limit`` bytes without reading further."""
        if self.declared is not None and self.declared > limit:
            raise too_large()
        data = bytearray()
        async for chunk in self:
            data += chunk
            if len(data) > limit:
                raise too_large()
        return bytes(data)

    async def drain(self) -> bool:
        """Discard what is left of the body, unless that is more than DRAIN_LIMIT. True if the
        whole body has been read (the connection can serve the next request)."""
        if self.done:
            return True
        if self.declared is not None and self.declared > DRAIN_LIMIT:
            return False
        drained = 0
        with contextlib.suppress(ClientDisconnect):
            async for chunk in self:
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    return False
        return self.done

    @contextlib.asynccontextmanager
    async def draining_on_error(self) -> AsyncIterator[Body]:
        try:
            yield self
        except CargobayError:
            await self.drain()
            raise


async def finish_body(request: Request) -> bool:
    """After an error answer: read the rest of the request's body (whether or not a handler
    started reading it), so the client reads the answer and can send its next request on the
    same connection. False if that would mean reading too much: the answer should then close
    the connection."""
    body: Body = request.scope.get("cargobay.body") or Body(request)
    return await body.drain()
