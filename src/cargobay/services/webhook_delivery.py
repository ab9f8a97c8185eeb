"""The webhook delivery job (exclusive: one worker of all workers and replicas runs it).

Each run reads the events committed since its cursor from the outbox, queues one delivery per
(hook, event type) that wants it, in the transaction that moves the cursor, then sends what is
due: per hook, strictly in queue order (a failing delivery holds back that hook's later ones,
never another hook's), with retries on an exponential back-off with jitter for
``retry_for`` seconds. A delivery that was being sent when the process died is still pending
and goes out again after the restart (at least once; receivers dedupe on ``X-GitHub-Delivery``).
Pushes never wait for any of it: they only write their event.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import anyio
import anyio.to_thread

from cargobay.auth.sealing import SealingError, SecretBox
from cargobay.ports.events import Event, EventLog
from cargobay.ports.packages import PackageStore
from cargobay.ports.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    Delivery,
    Hook,
    NewDelivery,
    WebhookStore,
)
from cargobay.services.webhook_payloads import Payloads, deliveries_of, wants
from cargobay.services.webhook_targets import AllowList, Answer, post

log = logging.getLogger(__name__)

CONSUMER = "webhooks"
USER_AGENT = "cargobay-Hookshot/1"
#: Back-off: the first retry after about a second, doubling up to 10 minutes between tries.
FIRST_RETRY = 1.0
LONGEST_WAIT = 600.0
PRUNE_EVERY = 3600.0


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (>= 1): exponential, with jitter (half to
    all of the exponential delay), so receivers coming back are not hit all at once."""
    delay = min(LONGEST_WAIT, FIRST_RETRY * 2 ** min(attempts - 1, 30))
    return random.uniform(delay / 2, delay)


def signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``: the HMAC-SHA256 of the body, keyed with the hook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_of(hook: Hook, delivery: Delivery, secret: str | None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery (signed with ``secret``: the hook's as it is now)."""
    if hook.content_type == "form":
        body = urlencode({"payload": delivery.payload}).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        body = delivery.payload.encode()
        content_type = "application/json"
    target = (
        "site"
        if hook.owner_id is None
        else ("organization" if hook.owner_type == "Organization" else "user")
    )
    headers = {
        "User-Agent": USER_AGENT,
        "Content-Type": content_type,
        "X-GitHub-Event": delivery.event,
        "X-GitHub-Delivery": delivery.guid,
        "X-GitHub-Hook-ID": str(hook.id),
        "X-GitHub-Hook-Installation-Target-Type": target,
        "X-GitHub-Hook-Installation-Target-ID": str(hook.owner_id or 0),
    }
    if secret:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return body, headers


class WebhookDelivery:
    def __init__(
        self,
        store: WebhookStore,
        events: EventLog,
        packages: PackageStore,
        payloads: Payloads,
        *,
        box: SecretBox,
        allowed: AllowList,
        timeout: float,
        retry_for: float,
        follow_redirects: bool,
        retention: float,
        on_outcome: Callable[[str], None] | None = None,
        concurrency: int = 8,
        budget: float = 20.0,
    ) -> None:
        self.store = store
        self.events = events
        self.packages = packages
        self.payloads = payloads
        self.box = box
        self.allowed = allowed
        self.timeout = timeout
        self.retry_for = timedelta(seconds=retry_for)
        self.follow_redirects = follow_redirects
        self.retention = timedelta(seconds=retention)
        self.on_outcome = on_outcome
        self.concurrency = concurrency
        self.budget = budget
        self._pruned = 0.0

    async def run(self) -> None:
        """One run of the job: queue new events, send what is due, now and then prune."""
        await self.fan_out()
        await self.send_due()
        if time.monotonic() - self._pruned > PRUNE_EVERY:
            self._pruned = time.monotonic()
            removed = await self.store.prune(datetime.now(UTC) - self.retention)
            if removed:
                log.info("webhooks: removed %d deliveries past the retention period", removed)

    # -- queueing -----------------------------------------------------------------------------

    async def fan_out(self, batch: int = 500) -> int:
        """Queue the deliveries of the events after the cursor; returns how many."""
        queued = 0
        while True:
            position = await self.events.position(CONSUMER)
            found = await self.events.after(position, limit=batch)
            if not found:
                return queued
            made: list[NewDelivery] = []
            receivers: dict[int | None, list[Hook]] = {}
            for event in found:
                pairs = deliveries_of(event)
                if not pairs:
                    continue
                if event.owner_id not in receivers:
                    owners = [event.owner_id] if event.owner_id is not None else []
                    receivers[event.owner_id] = await self.store.receiving(owners)
                hooks = [h for h in receivers[event.owner_id] if h.created_at <= event.at]
                if hooks:
                    made += await self._deliveries(event, pairs, hooks)
            assert found[-1].id is not None
            await self.store.enqueue(made, consumer=CONSUMER, position=found[-1].id)
            queued += len(made)
            if len(found) < batch:
                return queued

    async def _deliveries(
        self, event: Event, pairs: list[tuple[str, str]], hooks: list[Hook]
    ) -> list[NewDelivery]:
        package = version = None
        if event.package_id is not None:
            package = await self.packages.by_id(event.package_id)
            if package is not None and event.version_id is not None:
                version = await self.packages.version(package.id, event.version_id)
        made = []
        for event_type, action in pairs:
            wanting = [h for h in hooks if wants(h.events, event_type)]
            if not wanting:
                continue
            body = json.dumps(
                self.payloads.payload(event, event_type, action, package, version),
                separators=(",", ":"),
                sort_keys=True,
            )
            for hook in wanting:
                guid = str(uuid.uuid4())
                made.append(NewDelivery(hook.id, event.id, guid, event_type, action, body))
        return made

    # -- sending ------------------------------------------------------------------------------

    async def send_due(self) -> None:
        """Send, per hook, its due deliveries in order, hooks side by side, for at most
        ``budget`` seconds."""
        deadline = time.monotonic() + self.budget
        limiter = anyio.CapacityLimiter(self.concurrency)
        async with anyio.create_task_group() as tasks:
            for hook, head in await self.store.heads():
                if hook.active:
                    tasks.start_soon(self._drain, hook, head, deadline, limiter)

    async def _drain(
        self, hook: Hook, head: Delivery, deadline: float, limiter: anyio.CapacityLimiter
    ) -> None:
        async with limiter:
            delivery: Delivery | None = head
            while delivery is not None and time.monotonic() < deadline:
                if delivery.next_at > datetime.now(UTC):
                    return
                if not await self.attempt(hook, delivery):
                    return
                delivery = await self.store.next_pending(hook.id)

    async def attempt(self, hook: Hook, delivery: Delivery) -> bool:
        """Send one delivery and record the outcome; True when the hook may go on with the
        next one (delivered, or given up)."""
        secret: str | None = None
        unsigned: str | None = None
        try:
            secret = self.box.open(hook.secret) if hook.secret else None
        except SealingError as exc:
            unsigned = f"the hook's secret can't be decrypted: {exc}"
        body, headers = request_of(hook, delivery, secret)
        if unsigned is not None:
            answer = Answer(error=unsigned)
        else:
            answer = await anyio.to_thread.run_sync(
                functools.partial(
                    post,
                    hook.url,
                    body,
                    headers,
                    allowed=self.allowed,
                    timeout=self.timeout,
                    follow_redirects=self.follow_redirects,
                )
            )
        at = datetime.now(UTC)
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "delivered_at": at,
            "status_code": answer.status,
            "duration": round(answer.duration, 4),
            "request_headers": headers,
            "response_headers": answer.headers,
            "response_body": answer.body,
        }
        if answer.ok and answer.error is None:
            values.update(state=DELIVERED, status="OK")
            outcome = "delivered"
        else:
            status = answer.error or f"Invalid HTTP Response: {answer.status}"
            values["status"] = status[:255]
            refused = status.startswith("refused:")
            if at - delivery.created_at >= self.retry_for:
                values["state"] = FAILED
                outcome = "failed"
                log.warning(
                    "webhook %d: gave up delivery %s after %d attempts: %s",
                    hook.id,
                    delivery.guid,
                    attempts,
                    status,
                )
            else:
                values.update(state=PENDING, next_at=at + timedelta(seconds=backoff(attempts)))
                outcome = "refused" if refused else "retried"
        await self.store.record(delivery.id, values)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return bool(values["state"] != PENDING)
