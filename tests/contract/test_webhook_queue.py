"""The webhook store and delivery job on every SQL backend, against a real receiver on
127.0.0.1: events become deliveries once (queued with the cursor move), in order per hook; a
failing hook holds back only its own later deliveries; retention drops finished ones only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.fernet import Fernet

from cargobay.auth.sealing import SecretBox
from cargobay.metadata.sql import SqlMetadata
from cargobay.ports.events import Action, Actor, Event
from cargobay.services.webhook_delivery import CONSUMER, WebhookDelivery
from cargobay.services.webhook_payloads import Payloads
from cargobay.services.webhook_targets import AllowList

pytestmark = pytest.mark.anyio


class Receiver:
    def __init__(self) -> None:
        self.got: dict[str, list[str]] = {}
        self.failing: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.strip("/")
                if path in outer.failing:
                    self.send_response(503)
                else:
                    outer.got.setdefault(path, []).append(body["cargobay"]["event_id"])
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def job(meta: SqlMetadata) -> WebhookDelivery:
    return WebhookDelivery(
        meta.webhooks,
        meta.events,
        meta.package_records,
        Payloads("https://registry.example.com", "containers.example.com"),
        box=SecretBox([Fernet.generate_key()]),
        allowed=AllowList.parse("127.0.0.1"),
        timeout=5,
        retry_for=3600,
        follow_redirects=False,
        retention=60,
    )


def published(n: int) -> list[Event]:
    return [
        Event(
            Action.VERSION_PUBLISHED,
            Actor(user_id=1, login="octo"),
            package=f"acme/app{n}",
            digest=f"sha256:{i:064x}",
            data={"new": True, "tag": f"v{i}"},
        )
        for i in range(n)
    ]


async def add_hook(meta: SqlMetadata, url: str) -> int:
    hook = await meta.webhooks.create(
        None, url=url, secret="s", content_type="json", events=["registry_package"], active=True
    )
    return hook.id


async def test_each_event_is_delivered_once_in_order(meta: SqlMetadata, receiver: Receiver) -> None:
    await add_hook(meta, receiver.url("a"))
    await meta.events.append(published(5))
    delivery = job(meta)
    await delivery.run()
    await delivery.run()
    ids = [e.id for e in await meta.events.after(0, limit=100)]
    assert receiver.got["a"] == ids
    assert await meta.events.position(CONSUMER) == ids[-1]
    # Non-delivered kinds of events move the cursor too, and queue nothing.
    await meta.events.append([Event(Action.TOKEN_CREATED, Actor(user_id=1))])
    await delivery.run()
    assert receiver.got["a"] == ids


async def test_a_failing_hook_holds_back_only_its_own_deliveries(
    meta: SqlMetadata, receiver: Receiver
) -> None:
    failing = await add_hook(meta, receiver.url("down"))
    await add_hook(meta, receiver.url("up"))
    receiver.failing.add("down")
    await meta.events.append(published(3))
    delivery = job(meta)
    await delivery.run()
    ids = [e.id for e in await meta.events.after(0, limit=100)]
    assert receiver.got["up"] == ids and "down" not in receiver.got
    log = await meta.webhooks.deliveries(failing, before=None, limit=10)
    assert [(d.state, d.attempts) for d in log] == [("pending", 0), ("pending", 0), ("pending", 1)]
    assert log[-1].status == "Invalid HTTP Response: 503"
    assert log[-1].next_at > datetime.now(UTC)
    receiver.failing.clear()
    for d in log:  # due now
        await meta.webhooks.record(d.id, {"next_at": datetime.now(UTC) - timedelta(seconds=1)})
    await delivery.run()
    assert receiver.got["down"] == ids
    # Retention drops finished deliveries past it, never queued ones.
    await meta.events.append(published(1))
    await delivery.fan_out()
    removed = await meta.webhooks.prune(datetime.now(UTC) + timedelta(seconds=1))
    assert removed == 6
    left = await meta.webhooks.deliveries(failing, before=None, limit=10)
    assert [d.state for d in left] == ["pending"]
