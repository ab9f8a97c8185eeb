"""Webhooks from the outside: a real ``cargobay serve`` delivering to a real HTTP receiver (a
threaded HTTP server on 127.0.0.1 in this test, allow-listed with
``CARGOBAY_WEBHOOK_ALLOWED_HOSTS``).

- deliveries are signed (``X-Hub-Signature-256`` checked with the secret), in GitHub's
  ``registry_package`` shape, logged (request, response, status) and redeliverable;
- a receiver that is down, then back: every event arrives, in order per hook, each delivery
  GUID once or more (at least once), while another hook's receiver got everything on time;
- ``kill -9`` of the server while a delivery is in flight, then a restart: it goes out;
- a hook to 127.0.0.1 without the allow-list is refused when saved (422), and a name that
  resolves to it is refused at delivery, with the reason in the delivery log;
- octokit's ``orgs.createWebhook`` (and list, get, update, deliveries, delete) works unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from test_rest_clients import Octokit, octokit_installed, push_image  # noqa: F401

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no webhooks"),
]

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ORG = "e2e"


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request; ``stop``/``start`` take it down
    and bring it back on the same port; ``hold`` makes requests wait until released."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        self.hold: threading.Event | None = None
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                hold = outer.hold
                if hold is not None:
                    with outer.arrived:
                        outer.received.append({**request, "held": True})
                        outer.arrived.notify_all()
                    hold.wait(60)
                    return  # the server was killed meanwhile: nobody reads the answer
                with outer.arrived:
                    outer.received.append(request)
                    outer.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def deliveries(self, event: str | None = None) -> list[dict[str, Any]]:
        with self.arrived:
            return [
                r
                for r in self.received
                if not r.get("held") and (event is None or r["headers"]["x-github-event"] == event)
            ]

    def wait_for(self, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; received: {[r['headers'] for r in self.received]}"
                self.arrived.wait(min(left, 0.5))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    if found.hold is not None:
        found.hold.set()
    found.stop()


@pytest.fixture(scope="module")
def hooked(server_factory: Any) -> Any:
    """A registry that may deliver to 127.0.0.1, looking for events every 0.2 s."""
    return server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)


def api(server: Any) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v3", auth=server.auth, timeout=30)


def registry_http(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=server.auth, timeout=30)


def create_hook(server: Any, url: str, **extra: Any) -> dict[str, Any]:
    config = {"url": url, "content_type": "json", **extra.pop("config", {})}
    body = {"name": "web", "config": config, "events": ["registry_package"], **extra}
    with api(server) as client:
        r = client.post(f"/orgs/{ORG}/hooks", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def payload(request: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request["body"])
    return body


def settled_log(
    server: Any, hook_id: int, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
) -> list[dict[str, Any]]:
    """The hook's delivery log once ``done(log)`` holds (the server records an answer just
    after the receiver has sent it)."""
    deadline = time.monotonic() + timeout
    with api(server) as client:
        while True:
            log: list[dict[str, Any]] = client.get(f"/orgs/{ORG}/hooks/{hook_id}/deliveries").json()
            if done(log):
                return log
            assert time.monotonic() < deadline, log
            time.sleep(0.2)


def delivered(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda log: len(log) >= count and all(d["state"] == "delivered" for d in log)


def test_deliveries_are_signed_in_githubs_shape_logged_and_redeliverable(
    hooked: Any, receiver: Receiver
) -> None:
    secret = secrets.token_hex(16)
    hook = create_hook(
        hooked,
        receiver.url,
        config={"secret": secret},
        events=["registry_package", "cargobay_package"],
    )
    assert hook["config"]["secret"] == "********" and hook["active"] is True
    repo = f"{ORG}/signed-{secrets.token_hex(3)}"
    with registry_http(hooked) as http:
        digest, _ = push_image(http, repo, "v1")
    receiver.wait_for(lambda: len(receiver.deliveries("registry_package")) >= 1)
    (first,) = receiver.deliveries("registry_package")
    headers, body = first["headers"], first["body"]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature-256"], expected)
    assert GUID.fullmatch(headers["x-github-delivery"]), headers
    assert headers["user-agent"].startswith("cargobay-Hookshot/")
    assert headers["content-type"] == "application/json"
    assert headers["x-github-hook-id"] == str(hook["id"])
    sent = payload(first)
    assert sent["action"] == "published"
    package = sent["registry_package"]
    assert package["name"] == repo.split("/", 1)[1] and package["namespace"] == ORG
    assert package["package_type"] == "CONTAINER"
    version = package["package_version"]
    assert version["version"] == digest
    assert version["container_metadata"]["tag"] == {"name": "v1", "digest": digest}
    assert version["container_metadata"]["tags"] == ["v1"]
    assert sent["sender"]["login"] == hooked.user
    assert sent["organization"]["login"] == ORG

    # A delete is a cargobay_package event (GitHub has none).
    with registry_http(hooked) as http:
        assert http.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    receiver.wait_for(lambda: len(receiver.deliveries("cargobay_package")) >= 1)
    (deleted,) = receiver.deliveries("cargobay_package")
    assert payload(deleted)["action"] == "version_deleted"
    assert payload(deleted)["package"]["package_version"]["version"] == digest

    # The delivery log: newest first, with request and response.
    log = settled_log(hooked, hook["id"], delivered(2))
    with api(hooked) as client:
        assert [d["event"] for d in log] == ["cargobay_package", "registry_package"]
        assert all(d["status_code"] == 200 and d["status"] == "OK" for d in log), log
        assert log[1]["guid"] == headers["x-github-delivery"]
        detail = client.get(f"/orgs/{ORG}/hooks/{hook['id']}/deliveries/{log[1]['id']}").json()
        assert detail["request"]["payload"] == sent
        assert detail["request"]["headers"]["X-Hub-Signature-256"] == expected
        assert detail["response"]["payload"] == "ok"
        assert detail["duration"] is not None
        # Redeliver: the same GUID and body again, listed as a redelivery.
        r = client.post(f"/orgs/{ORG}/hooks/{hook['id']}/deliveries/{log[1]['id']}/attempts")
        assert r.status_code == 202, r.text
        receiver.wait_for(lambda: len(receiver.deliveries("registry_package")) >= 2)
        again = receiver.deliveries("registry_package")[1]
        assert again["headers"]["x-github-delivery"] == headers["x-github-delivery"]
        assert again["body"] == body
        newest = client.get(f"/orgs/{ORG}/hooks/{hook['id']}/deliveries").json()[0]
        assert newest["redelivery"] is True
        # A ping, as GitHub sends one.
        assert client.post(f"/orgs/{ORG}/hooks/{hook['id']}/pings").status_code == 204
        receiver.wait_for(lambda: len(receiver.deliveries("ping")) >= 1)
        assert payload(receiver.deliveries("ping")[0])["hook_id"] == hook["id"]
        assert client.delete(f"/orgs/{ORG}/hooks/{hook['id']}").status_code == 204
        assert client.get(f"/orgs/{ORG}/hooks/{hook['id']}").status_code == 404


def test_a_receiver_down_then_back_gets_every_event_in_order(
    hooked: Any, receiver: Receiver
) -> None:
    other = Receiver()
    try:
        down = create_hook(hooked, receiver.url)
        up = create_hook(hooked, other.url)
        receiver.stop()
        repo = f"{ORG}/order-{secrets.token_hex(3)}"
        with registry_http(hooked) as http:
            digests = [push_image(http, repo, f"t{i}")[0] for i in range(5)]
        # The other hook is not held back by the failing one.
        other.wait_for(lambda: len(other.deliveries()) >= 5, timeout=30)
        log = settled_log(
            hooked, down["id"], lambda log: any("ConnectionRefused" in d["status"] for d in log)
        )
        assert len(log) == 5 and all(d["state"] == "pending" for d in log), log
        receiver.start()
        receiver.wait_for(lambda: len({guid(r) for r in receiver.deliveries()}) >= 5, timeout=90)
        for got in (receiver.deliveries(), other.deliveries()):
            versions = [payload(r)["registry_package"]["package_version"]["version"] for r in got]
            firsts = list(dict.fromkeys(versions))  # at least once: repeats only of the last
            assert firsts == digests, versions
        log = settled_log(hooked, down["id"], delivered(5))
        assert len(log) == 5 and max(d["attempts"] for d in log) >= 2, log
        with api(hooked) as client:
            for hook in (down, up):
                client.delete(f"/orgs/{ORG}/hooks/{hook['id']}")
    finally:
        other.stop()


def guid(request: dict[str, Any]) -> str:
    value: str = request["headers"]["x-github-delivery"]
    return value


def test_a_delivery_in_flight_when_the_server_is_killed_goes_out_after_a_restart(
    server_factory: Any, restart_server: Any, receiver: Receiver
) -> None:
    server = server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)
    hook = create_hook(server, receiver.url)
    receiver.hold = threading.Event()
    repo = f"{ORG}/killed-{secrets.token_hex(3)}"
    with registry_http(server) as http:
        digest, _ = push_image(http, repo, "v1")
    receiver.wait_for(lambda: any(r.get("held") for r in receiver.received))
    held_guid = guid(receiver.received[0])
    server.kill()  # SIGKILL, mid-delivery
    receiver.hold.set()
    receiver.hold = None
    server = restart_server(server)
    receiver.wait_for(lambda: len(receiver.deliveries()) >= 1)
    (sent,) = receiver.deliveries()
    assert guid(sent) == held_guid
    assert payload(sent)["registry_package"]["package_version"]["version"] == digest
    log = settled_log(server, hook["id"], delivered(1))
    assert [(d["state"], d["status_code"]) for d in log] == [("delivered", 200)], log


def test_loopback_targets_are_refused_unless_allow_listed(
    server_factory: Any, receiver: Receiver
) -> None:
    server = server_factory(webhook_interval=0.2)  # no allow-list
    port = receiver.port
    with api(server) as client:
        for url in (
            f"http://127.0.0.1:{port}/hook",
            f"http://localhost:{port}/hook",
            f"http://[::1]:{port}/hook",
            f"http://[::ffff:127.0.0.1]:{port}/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/hook",
        ):
            body = {"name": "web", "config": {"url": url}, "events": ["registry_package"]}
            r = client.post(f"/orgs/{ORG}/hooks", json=body)
            assert r.status_code == 422, (url, r.text)
            assert "address" in r.json()["message"], r.text
        assert client.get(f"/orgs/{ORG}/hooks").json() == []
    # A name that resolves to 127.0.0.1 (here: the decimal form of the address) is checked
    # after resolution, at delivery.
    hook = create_hook(server, f"http://2130706433:{port}/hook")
    with registry_http(server) as http:
        push_image(http, f"{ORG}/refused-{secrets.token_hex(3)}", "v1")
    deadline = time.monotonic() + 30
    with api(server) as client:
        while True:
            log = client.get(f"/orgs/{ORG}/hooks/{hook['id']}/deliveries").json()
            if log and log[0]["attempts"] >= 1:
                break
            assert time.monotonic() < deadline, log
            time.sleep(0.2)
    assert log[0]["status"].startswith("refused: 2130706433 resolves to 127.0.0.1 (loopback)")
    assert log[0]["status_code"] == 0 and log[0]["state"] == "pending"
    assert receiver.received == []


def test_only_owners_manage_an_organizations_hooks(hooked: Any) -> None:
    outsider, member = f"out{secrets.token_hex(3)}", f"mem{secrets.token_hex(3)}"
    tokens = {}
    for login in (outsider, member):
        hooked.cli("user", "create", login)
        tokens[login] = hooked.cli(
            "token", "create", "--user", login, "--scopes", "read:packages,write:packages"
        )
    hooked.cli("org", "add-member", ORG, member)
    hook = create_hook(hooked, "https://hooks.example.com/x")
    for login, status in ((outsider, 404), (member, 403)):
        headers = {"Authorization": f"Bearer {tokens[login]}"}
        with httpx.Client(base_url=f"{hooked.url}/api/v3", headers=headers) as client:
            assert client.get(f"/orgs/{ORG}/hooks").status_code == status
            assert client.get(f"/orgs/{ORG}/hooks/{hook['id']}").status_code == status
            assert client.delete(f"/orgs/{ORG}/hooks/{hook['id']}").status_code == status
            assert client.get("/admin/hooks").status_code == 403
            mine = client.post("/user/hooks", json={"config": {"url": "https://x.example/h"}})
            assert mine.status_code == 201, mine.text
            assert client.get("/user/hooks").json()[0]["type"] == "User"
    with httpx.Client(base_url=f"{hooked.url}/api/v3") as anonymous:
        assert anonymous.get(f"/orgs/{ORG}/hooks").status_code == 401
    with api(hooked) as client:
        assert client.delete(f"/orgs/{ORG}/hooks/{hook['id']}").status_code == 204


@pytest.fixture
def octokit_hooked(octokit_installed: Path, hooked: Any, tmp_path: Path) -> Iterator[Octokit]:  # noqa: F811
    client = Octokit(f"{hooked.url}/api/v3", hooked.token, tmp_path / "octokit.log")
    yield client
    client.close()


def test_octokit_creates_and_manages_org_webhooks(
    octokit_hooked: Octokit, hooked: Any, receiver: Receiver
) -> None:
    octokit = octokit_hooked
    secret = secrets.token_hex(8)
    created = octokit.ok(
        "orgs.createWebhook",
        201,
        org=ORG,
        name="web",
        config={"url": receiver.url, "content_type": "form", "secret": secret},
        events=["registry_package"],
        active=True,
    )
    assert created["config"] == {
        "url": receiver.url,
        "content_type": "form",
        "insecure_ssl": "0",
        "secret": "********",
    }
    hook_id = created["id"]
    listed = octokit.ok("orgs.listWebhooks", org=ORG)
    assert hook_id in [h["id"] for h in listed]
    assert octokit.ok("orgs.getWebhook", org=ORG, hook_id=hook_id)["events"] == ["registry_package"]
    with registry_http(hooked) as http:
        digest, _ = push_image(http, f"{ORG}/octo-{secrets.token_hex(3)}", "v1")
    receiver.wait_for(lambda: len(receiver.deliveries()) >= 1)
    (form,) = receiver.deliveries()
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    expected = "sha256=" + hmac.new(secret.encode(), form["body"], hashlib.sha256).hexdigest()
    assert form["headers"]["x-hub-signature-256"] == expected
    from urllib.parse import parse_qs

    sent = json.loads(parse_qs(form["body"].decode())["payload"][0])
    assert sent["registry_package"]["package_version"]["version"] == digest
    settled_log(hooked, hook_id, delivered(1))
    deliveries = octokit.ok("orgs.listWebhookDeliveries", org=ORG, hook_id=hook_id)
    assert [d["status_code"] for d in deliveries] == [200]
    one = octokit.ok(
        "orgs.getWebhookDelivery", org=ORG, hook_id=hook_id, delivery_id=deliveries[0]["id"]
    )
    assert one["guid"] == form["headers"]["x-github-delivery"]
    updated = octokit.ok("orgs.updateWebhook", org=ORG, hook_id=hook_id, active=False)
    assert updated["active"] is False and updated["config"]["secret"] == "********"
    octokit.ok("orgs.deleteWebhook", 204, org=ORG, hook_id=hook_id)
    assert octokit.call("orgs.getWebhook", org=ORG, hook_id=hook_id)["status"] == 404


def test_metrics_count_deliveries_by_outcome_and_the_backlog(
    server_factory: Any, receiver: Receiver
) -> None:
    from prometheus_client.parser import text_string_to_metric_families
    from test_metrics import free_port

    port = free_port()
    server = server_factory(
        webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2, metrics_port=port, workers=2
    )

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert resp.status_code == 200, resp.text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text)
            for s in family.samples
        }

    create_hook(server, receiver.url)
    receiver.stop()
    with registry_http(server) as http:
        for tag in ("a", "b"):
            push_image(http, f"{ORG}/metered-{secrets.token_hex(3)}", tag)
    deadline = time.monotonic() + 30
    while True:  # the first delivery fails and waits; both are queued
        samples = scrape()
        retried = samples.get(
            ("cargobay_webhook_deliveries_total", frozenset({("outcome", "retried")})), 0
        )
        pending = samples.get(("cargobay_webhook_pending", frozenset()), -1)
        if retried >= 1 and pending == 2:
            break
        assert time.monotonic() < deadline, samples
        time.sleep(0.5)
    receiver.start()
    receiver.wait_for(lambda: len({guid(r) for r in receiver.deliveries()}) >= 2, timeout=60)
    deadline = time.monotonic() + 30
    while True:
        samples = scrape()
        delivered = samples.get(
            ("cargobay_webhook_deliveries_total", frozenset({("outcome", "delivered")})), 0
        )
        if delivered >= 2 and samples.get(("cargobay_webhook_pending", frozenset())) == 0:
            break
        assert time.monotonic() < deadline, samples
        time.sleep(0.5)
    assert samples[("cargobay_outbox_backlog", frozenset())] == 0
