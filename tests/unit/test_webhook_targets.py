"""Where webhooks may deliver (SSRF protection): addresses checked after resolution, the
connection made to the checked address with the original ``Host``, redirects not followed
unless enabled and then checked hop by hop, the answer capped; and the signature and back-off
of deliveries."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cargobay.services.webhook_delivery import backoff, signature
from cargobay.services.webhook_targets import (
    MAX_KEPT,
    AllowList,
    TargetRefused,
    check_literal,
    kind_of,
    pick_address,
    post,
)

LOOPBACK = AllowList.parse("127.0.0.1")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback"),
        ("::1", "a loopback"),
        ("::ffff:127.0.0.1", "a loopback"),
        ("169.254.169.254", "a link-local"),
        ("fe80::1", "a link-local"),
        ("10.1.2.3", "a private"),
        ("192.168.0.1", "a private"),
        ("172.16.0.1", "a private"),
        ("fd00::1", "a private"),
        ("100.64.0.1", "a non-public"),
        ("224.0.0.1", "a multicast"),
        ("ff02::1", "a multicast"),
        ("0.0.0.0", "an unspecified"),
        ("::", "an unspecified"),
        ("93.184.216.34", None),
        ("2606:4700::1", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert kind_of(ipaddress.ip_address(address)) == kind


def test_allow_list_takes_hosts_addresses_and_networks() -> None:
    allowed = AllowList.parse("127.0.0.1, 10.0.0.0/8 hooks.internal")
    assert allowed.allows("x", ipaddress.ip_address("10.9.9.9"))
    assert allowed.allows("x", ipaddress.ip_address("127.0.0.1"))
    assert not allowed.allows("x", ipaddress.ip_address("127.0.0.2"))
    assert allowed.allows("hooks.internal", ipaddress.ip_address("192.168.1.1"))
    for bad in ("10.0.0.0/33", "http://x", "a b/c"):
        with pytest.raises(ValueError):
            AllowList.parse(bad)


def test_literal_urls_are_checked_when_saved() -> None:
    for url in ("http://127.0.0.1/", "http://localhost:8080/", "https://[::1]/", "http://10.0.0.1"):
        with pytest.raises(ValueError, match="address"):
            check_literal(url, AllowList())
    check_literal("http://127.0.0.1:9/", LOOPBACK)
    check_literal("https://hooks.example.com/x", AllowList())  # names: checked at delivery
    for url in ("ftp://x.example/", "http://user:pw@x.example/", "http://x.example:99999/"):
        with pytest.raises(ValueError):
            check_literal(url, AllowList())


def test_every_resolved_address_is_checked() -> None:
    def resolver(answers: list[str]) -> Any:
        return lambda host, port: answers

    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1 \(loopback\), 10\.0\.0\.1 \(private\)"):
        pick_address("evil.example", 80, AllowList(), resolver(["127.0.0.1", "10.0.0.1"]))
    chosen = pick_address("mixed.example", 80, AllowList(), resolver(["10.0.0.1", "8.8.8.8"]))
    assert chosen == "8.8.8.8"
    allowed = AllowList.parse("10.0.0.0/8")
    assert pick_address("in.example", 80, allowed, resolver(["10.0.0.1"])) == "10.0.0.1"


class _Receiver:
    def __init__(self, answer: Any) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append({"host": self.headers["Host"], "body": body})
                answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = b"x" * (MAX_KEPT * 2)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    found = _Receiver(answer)
    yield found
    found.close()


def test_the_connection_goes_to_the_checked_address_with_the_original_host(
    receiver: _Receiver,
) -> None:
    """Resolved once (no second lookup a rebinding DNS could answer differently); the
    request reaches the address that was checked, with ``Host`` naming the original host."""
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["8.8.8.8"]

    allowed = AllowList.parse("hooks.test")
    answer = post(
        f"http://hooks.test:{receiver.port}/in",
        b"{}",
        {"Content-Type": "application/json"},
        allowed=allowed,
        timeout=5,
        resolver=resolver,
    )
    assert answer.ok, answer
    assert lookups == ["hooks.test"]
    assert receiver.requests == [{"host": f"hooks.test:{receiver.port}", "body": b"{}"}]
    assert answer.body.endswith("[truncated]") and len(answer.body) < MAX_KEPT + 20
    assert answer.duration > 0


def test_redirects_are_not_followed_unless_enabled_and_then_checked() -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(307)
        handler.send_header("Location", "http://169.254.169.254/latest/meta-data")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    redirecting = _Receiver(answer)
    try:
        url = f"http://127.0.0.1:{redirecting.port}/"
        first = post(url, b"{}", {}, allowed=LOOPBACK, timeout=5)
        assert first.status == 307 and not first.ok
        assert first.error is not None and "redirects are not followed" in first.error
        followed = post(url, b"{}", {}, allowed=LOOPBACK, timeout=5, follow_redirects=True)
        assert followed.status is None
        assert followed.error is not None
        assert followed.error.startswith("refused: 169.254.169.254 resolves to 169.254.169.254")
        assert len(redirecting.requests) == 2
    finally:
        redirecting.close()


def test_a_refused_target_is_never_contacted(receiver: _Receiver) -> None:
    answer = post(f"http://127.0.0.1:{receiver.port}/", b"{}", {}, allowed=AllowList(), timeout=5)
    assert answer.status is None and answer.error is not None
    assert "loopback" in answer.error and "webhook_allowed_hosts" in answer.error
    assert receiver.requests == []


def test_signature_and_backoff() -> None:
    body = b'{"action":"published"}'
    expected = hmac.new(b"It's a Secret to Everybody", body, hashlib.sha256).hexdigest()
    assert signature("It's a Secret to Everybody", body) == f"sha256={expected}"
    # GitHub's documented test vector.
    assert signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    for attempts in range(1, 40):
        delay = min(600.0, 2.0 ** (attempts - 1))
        assert delay / 2 <= backoff(attempts) <= delay
