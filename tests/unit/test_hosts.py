"""Host routing, trusted proxies and the public addresses settings derive (in process; the
end-to-end suite is ``tests/e2e/test_isolation.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from cargobay.api.forwarded import ForwardedHeaders
from cargobay.api.hosts import HostRouter
from cargobay.settings import Settings


def _scope(path: str, host: str, client: str = "192.0.2.10", **headers: str) -> dict[str, Any]:
    raw = [(b"host", host.encode())]
    raw += [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {
        "type": "http",
        "path": path,
        "scheme": "http",
        "headers": raw,
        "client": (client, 5555),
        "server": ("127.0.0.1", 8000),
    }


def test_forwarded_headers_from_an_untrusted_peer_are_removed() -> None:
    scope = _scope(
        "/token",
        "containers.example.com",
        x_forwarded_for="203.0.113.7",
        x_forwarded_proto="https",
        x_forwarded_host="evil.example",
    )
    ForwardedHeaders("10.0.0.0/8").apply(scope)
    assert scope["client"] == ("192.0.2.10", 5555)
    assert scope["scheme"] == "http"
    assert scope["headers"] == [(b"host", b"containers.example.com")]


def test_a_trusted_proxy_names_the_client_scheme_and_host() -> None:
    scope = _scope(
        "/token",
        "internal:8000",
        client="10.1.2.3",
        x_forwarded_for="203.0.113.99, 198.51.100.4, 10.9.9.9",
        x_forwarded_proto="https",
        x_forwarded_host="containers.example.com",
    )
    ForwardedHeaders("10.0.0.0/8, 127.0.0.1").apply(scope)
    # The rightmost address no trusted proxy added: what a client wrote further left is ignored.
    assert scope["client"][0] == "198.51.100.4"
    assert scope["scheme"] == "https"
    assert (b"host", b"containers.example.com") in scope["headers"]
    assert (b"host", b"internal:8000") not in scope["headers"]


def test_garbage_in_the_chain_keeps_the_peer() -> None:
    scope = _scope("/", "h", client="10.1.2.3", x_forwarded_for="not-an-ip")
    ForwardedHeaders(["10.0.0.0/8"]).apply(scope)
    assert scope["client"][0] == "10.1.2.3"


def test_settings_derive_the_two_origins() -> None:
    s = Settings(hostname="Registry.Example.com", port=443, tls_cert="c", tls_key="k")
    assert s.isolated
    assert s.public_base_url == "https://registry.example.com"
    assert s.registry_url == "https://containers.registry.example.com"
    assert s.token_service == "containers.registry.example.com"
    proxied = Settings(
        hostname="example.com",
        registry_hostname="cr.example.com",
        base_url="https://example.com:8443/",
    )
    assert proxied.registry_url == "https://cr.example.com:8443"
    assert proxied.registry_address == "cr.example.com:8443"
    single = Settings(port=5000)
    assert not single.isolated
    assert single.registry_url == single.public_base_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    "bad",
    [
        {"hostname": "https://example.com"},
        {"hostname": "example.com:443"},
        {"trusted_proxies": "10.0.0.0/8, nonsense"},
        {"tls_cert": "only-a-cert.pem"},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)  # type: ignore[arg-type]


async def _call(router: HostRouter, scope: dict[str, Any]) -> tuple[str, int, dict[bytes, bytes]]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await router(scope, receive, send)
    start = sent[0]
    return str(start.get("app", "")), start["status"], dict(start["headers"])


def _app(name: str) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        cookies = [v for k, v in scope["headers"] if k == b"cookie"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-app", name.encode()), (b"x-cookies", b";".join(cookies))],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.mark.anyio
async def test_routing_by_host() -> None:
    router = HostRouter(
        _app("registry"),
        _app("site"),
        ForwardedHeaders(""),
        site_host="example.com",
        registry_host="containers.example.com",
        registry_url="https://containers.example.com",
        site_url="https://example.com",
    )

    async def route(path: str, host: str, **headers: str) -> tuple[int, dict[bytes, bytes]]:
        _, status, sent = await _call(router, _scope(path, host, **headers))
        return status, sent

    status, headers = await route(
        "/v2/a/b/manifests/v1", "CONTAINERS.example.com:443", cookie="s=1"
    )
    assert (status, headers[b"x-app"], headers[b"x-cookies"]) == (200, b"registry", b"")
    status, headers = await route("/login", "example.com", cookie="s=1")
    assert (status, headers[b"x-app"], headers[b"x-cookies"]) == (200, b"site", b"s=1")
    assert (await route("/v2/", "example.com"))[0] == 404
    assert (await route("/token", "example.com"))[0] == 404
    assert (await route("/", "containers.example.com"))[0] == 404
    assert (await route("/api/v3/user", "containers.example.com"))[0] == 404
    assert (await route("/", "127.0.0.1:8000"))[0] == 421
    assert (await route("/v2/", "evil.example"))[0] == 421
    assert (await route("/healthz", "10.0.0.5:8000"))[1][b"x-app"] == b"site"
    # HSTS on the site over HTTPS only.
    https = _scope("/", "example.com")
    https["scheme"] = "https"
    _, _, sent = await _call(router, https)
    assert sent[b"strict-transport-security"].startswith(b"max-age=")
    assert b"strict-transport-security" not in (await route("/", "example.com"))[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
