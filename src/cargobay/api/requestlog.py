"""One log line per request (``CARGOBAY_ACCESS_LOG=true``): a request id (the client's
``X-Request-Id`` if it sent a sane one, else a new one; echoed back), method, route template,
status, bytes in and out, duration, who (user id, token id, workflow repository id) and the
repository. JSON, or plain text when the output is a terminal.

What is logged is chosen, never copied from the request: no header, no query string (presigned
URLs), no raw path, so no secret can reach the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargobay.api.metrics import route_of
from cargobay.services.events import current_actor

log = logging.getLogger("cargobay.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        return json.dumps({"level": record.levelname.lower(), **fields}, separators=(",", ":"))


class Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        f: dict[str, Any] = getattr(record, "fields", {})
        who = f.get("user_id") or f.get("workflow_repository_id") or "-"
        return (
            f"{f['time']} {f['request_id']} {f['method']} {f['route']} {f['status']}"
            f" {f['bytes_out']}B {f['duration_ms']}ms who={who} repo={f.get('repository') or '-'}"
        )


def configure(stream: Any = None) -> None:
    """Send the request log to ``stream`` (stderr): JSON, or text on a terminal."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Text() if stream.isatty() else JsonLines())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestLog:
    """ASGI middleware: the request id header on every answer, and one log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        seen = {"in": 0, "out": 0, "status": 500}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["in"] += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                seen["out"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":  # a whole file
                seen["out"] += os.stat(message["path"]).st_size
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        finally:
            actor = current_actor()
            params = scope.get("path_params") or {}
            fields = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": request_id,
                "method": scope["method"],
                "route": route_of(scope),
                "status": seen["status"],
                "bytes_in": seen["in"],
                "bytes_out": seen["out"],
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "user_id": actor.user_id,
                "token_id": actor.token_id,
                "workflow_repository_id": actor.workflow_repository_id,
                "client": actor.address,
                "repository": params.get("name") if isinstance(params, dict) else None,
            }
            log.info("request", extra={"fields": fields})
