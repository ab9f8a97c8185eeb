"""Which application answers a request: routing by ``Host`` (subdomain isolation).

With a ``hostname`` set, the registry host serves ``/v2`` and ``/token`` and nothing else, and
never sees a cookie; the site host serves pages, ``/api/v3``, ``/login`` and static files and
never a registry path (404 with a hint naming the registry host, never a redirect that would
carry credentials); any other host gets 421 Misdirected Request. Liveness and readiness answer
on every host (load balancers probe by address). Without a hostname, one origin serves all.

HSTS is added to the site's responses when the request came over HTTPS.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargobay.api.forwarded import ForwardedHeaders
from cargobay.services.events import bind_client

HSTS = (b"strict-transport-security", b"max-age=31536000")
_PROBES = ("/healthz", "/readyz")


def is_registry_path(path: str) -> bool:
    return path.startswith("/v2") or path == "/token"


def host_name(scope: Scope) -> str:
    """The requested host name, lowercase, without port or trailing dot."""
    for name, value in scope["headers"]:
        if name == b"host":
            host: str = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[: host.find("]") + 1]
            return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")
    server = scope.get("server")
    return str(server[0]) if server else ""


class HostRouter:
    """The whole HTTP application: sends each request to the registry or the site."""

    def __init__(
        self,
        registry: ASGIApp,
        site: ASGIApp,
        forwarded: ForwardedHeaders,
        *,
        site_host: str = "",
        registry_host: str = "",
        registry_url: str = "",
        site_url: str = "",
    ) -> None:
        self.registry = registry
        self.site = site
        self.forwarded = forwarded
        self.site_host = site_host
        self.registry_host = registry_host
        self.registry_url = registry_url
        self.site_url = site_url

    @property
    def isolated(self) -> bool:
        return bool(self.registry_host) and self.registry_host != self.site_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # nothing here speaks WebSocket: refuse the upgrade
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.site(scope, receive, send)  # lifespan
            return
        self.forwarded.apply(scope)
        client = scope.get("client")
        bind_client(client[0] if client else None)
        path: str = scope["path"]
        if not self.isolated:
            if is_registry_path(path):
                await self.registry(scope, receive, send)
            else:
                await self._site(scope, receive, send)
            return
        host = host_name(scope)
        if path in _PROBES:
            await self.site(scope, receive, send)
        elif host == self.registry_host:
            if is_registry_path(path):
                # Cookies belong to the site: a registry call is authenticated by its
                # Authorization header only, whatever a client sends along.
                scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"cookie"]
                await self.registry(scope, receive, send)
            else:
                await _plain(
                    send,
                    404,
                    f"Not Found: this is the container registry ({self.registry_host}); "
                    f"pages and the REST API are at {self.site_url}\n",
                )
        elif host == self.site_host:
            if is_registry_path(path):
                await self._registry_hint(send)
            else:
                await self._site(scope, receive, send)
        else:
            await _plain(
                send,
                421,
                f"Misdirected Request: this server answers for {self.site_host} "
                f"and {self.registry_host}\n",
            )

    async def _site(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("scheme") != "https":
            await self.site(scope, receive, send)
            return

        async def with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HSTS]
            await send(message)

        await self.site(scope, receive, with_hsts)

    async def _registry_hint(self, send: Send) -> None:
        message = (
            f"the container registry is at {self.registry_url}: "
            f"docker login {self.registry_url.split('://', 1)[-1]}"
        )
        body = {"errors": [{"code": "NAME_UNKNOWN", "message": message, "detail": {}}]}
        await _send(send, 404, json.dumps(body).encode(), b"application/json")


async def _plain(send: Send, status: int, text: str) -> None:
    await _send(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
