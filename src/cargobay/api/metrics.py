"""Prometheus metrics: what each worker counts (requests by route template, method and status
with their latency, bytes in and out, sign-in rejections, database connections in use), and the
listener that serves them all, summed over the workers.

The workers write to ``PROMETHEUS_MULTIPROC_DIR`` (set by ``cargobay serve`` before they
start); the listener runs in the serving process, on its own address (127.0.0.1 by default),
never on the public port. Labels are bounded: a route template, never a path, digest or name.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The ``/v2`` endpoints (see :mod:`cargobay.api.oci.dispatch`) as route templates.
OCI_ROUTES = {
    "base": "/v2/",
    "catalog": "/v2/_catalog",
    "token": "/token",
    "upload_start": "/v2/{name}/blobs/uploads/",
    "upload_session": "/v2/{name}/blobs/uploads/{uuid}",
    "blob": "/v2/{name}/blobs/{digest}",
    "manifest": "/v2/{name}/manifests/{reference}",
    "tags": "/v2/{name}/tags/list",
    "referrers": "/v2/{name}/referrers/{digest}",
}
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BODILESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
#: Where a 429 means the sign-in limiter refused.
SIGN_IN_ROUTES = frozenset({"/token", "/login", "/v2/", "other"})

REQUESTS = Counter(
    "registry_http_requests",
    "HTTP requests by route, method and status",
    ["handler", "method", "code"],
)
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_UPPER_BOUNDS = (*_BUCKETS, float("inf"))
_SLOTS = len(_UPPER_BOUNDS)
DURATION = Histogram(
    "registry_http_request_duration_seconds",
    "Time to answer a request, by route and method",
    ["handler", "method"],
    buckets=_BUCKETS,
)
RECEIVED = Counter("registry_http_received_bytes", "Request body bytes received", ["handler"])
SENT = Counter("registry_http_sent_bytes", "Response body bytes sent", ["handler"])
IN_FLIGHT = Gauge(
    "registry_http_in_flight_requests",
    "Requests being answered (sampled every second)",
    multiprocess_mode="livesum",
)
SIGN_IN_REJECTED = Counter(
    "cargobay_sign_in_rejections", "Sign-ins refused by the failure limiter (429)", ["handler"]
)
DB_CONNECTIONS = Gauge(
    "cargobay_db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)

WEBHOOK_DELIVERIES = Counter(
    "cargobay_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, retried, refused, failed: given up)",
    ["outcome"],
)


def count_webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def route_of(scope: Scope) -> str:
    """The route template of a request that has been answered (bounded)."""
    endpoint = scope.get("cargobay.endpoint")
    if endpoint is not None:
        return OCI_ROUTES.get(endpoint, "other")
    path: str = scope.get("path", "")
    route = scope.get("route")
    template = getattr(route, "path", None)
    if path.startswith("/api/v3"):
        return "/api/v3" + template if isinstance(template, str) and template else "/api/v3"
    if isinstance(template, str) and template:
        return template
    if path.startswith("/static/"):
        return "/static"
    return "other"


class Tally:
    """What the requests of this worker counted since the last :meth:`flush`, in plain dicts.

    Writing a multiprocess metric costs a lock and an mmap write (~10 us); a request only adds
    to a dict here, and :meth:`flush` (a per-worker job, every second, and at shutdown) writes
    the sums: a handful of writes per second instead of several per request.
    """

    def __init__(self, pool_in_use: Callable[[], int] | None = None) -> None:
        self.pool_in_use = pool_in_use
        #: (handler, method, status) -> [requests, bytes received, bytes sent, seconds,
        #: requests per duration bucket...]
        self.stats: dict[tuple[str, str, int], list[Any]] = {}
        self.in_flight = 0

    def record(
        self, handler: str, method: str, status: int, seconds: float, received: int, sent: int
    ) -> None:
        entry = self.stats.get((handler, method, status))
        if entry is None:
            entry = self.stats[(handler, method, status)] = [0, 0, 0, 0.0] + [0] * _SLOTS
        entry[0] += 1
        entry[1] += received
        entry[2] += sent
        entry[3] += seconds
        entry[4 + bisect.bisect_left(_UPPER_BOUNDS, seconds)] += 1

    def flush(self) -> None:
        stats, self.stats = self.stats, {}
        for (handler, method, status), entry in stats.items():
            count, received, sent, seconds = entry[:4]
            REQUESTS.labels(handler, method, str(status)).inc(count)
            child = DURATION.labels(handler, method)
            # The histogram's own per-bucket values (what ``observe`` increments one at a time).
            for bucket, hits in zip(child._buckets, entry[4:], strict=True):
                if hits:
                    bucket.inc(hits)
            child._sum.inc(seconds)
            if received:
                RECEIVED.labels(handler).inc(received)
            if sent:
                SENT.labels(handler).inc(sent)
            if status == 429:
                where = handler if handler in SIGN_IN_ROUTES else "other"
                SIGN_IN_REJECTED.labels(where).inc(count)
        IN_FLIGHT.set(self.in_flight)
        if self.pool_in_use is not None:
            DB_CONNECTIONS.set(self.pool_in_use())

    async def flush_soon(self) -> None:
        self.flush()


class Metrics:
    """ASGI middleware counting every HTTP request of the app it wraps (into a :class:`Tally`)."""

    def __init__(self, app: ASGIApp, tally: Tally) -> None:
        self.app = app
        self.tally = tally

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = [0, 0, 500]  # received, sent, status

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                seen[1] += len(message.get("body", b""))
            elif kind == "http.response.start":
                seen[2] = message["status"]
            elif kind == "http.response.pathsend":  # a whole file, sent by the server
                seen[1] += os.stat(message["path"]).st_size
            await send(message)

        method = scope["method"]
        if method in _BODILESS:
            counted = receive
        else:

            async def counted() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    seen[0] += len(message.get("body", b""))
                return message

        tally = self.tally
        tally.in_flight += 1
        try:
            await self.app(scope, counted, counting_send)
        finally:
            tally.in_flight -= 1
            endpoint = scope.get("cargobay.endpoint")
            tally.record(
                OCI_ROUTES.get(endpoint, "other") if endpoint else route_of(scope),
                method if method in METHODS else "other",
                seen[2],
                time.perf_counter() - start,
                seen[0],
                seen[1],
            )


def pool_in_use(engine: Any) -> Callable[[], int]:
    """Connections ``engine``'s pool has handed out (0 for pools that don't count)."""
    pool = engine.pool

    def count() -> int:
        checked = getattr(pool, "checkedout", None)
        return int(checked()) if callable(checked) else 0

    return count


class StoreCounts(Collector):
    """Gauges read from the metadata database at scrape time (at most every ``ttl`` seconds):
    blobs, manifests, uploads in progress, and the webhook backlog."""

    def __init__(self, counts: Callable[[], dict[str, int]], ttl: float = 5.0) -> None:
        self.counts = counts
        self.ttl = ttl
        self._cached: tuple[float, dict[str, int]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.ttl:
            try:
                self._cached = (now, self.counts())
            except Exception:  # the database is down: the other metrics still answer
                return
        values = self._cached[1]
        for name, help_ in (
            ("blobs", "Distinct blobs linked by packages"),
            ("manifests", "Package versions that are not deleted"),
            ("uploads", "Blob uploads in progress"),
            ("outbox_backlog", "Events the webhook delivery job has not read yet"),
            ("webhook_pending", "Webhook deliveries waiting to be sent or retried"),
        ):
            yield GaugeMetricFamily(f"cargobay_{name}", help_, value=values.get(name, 0))


def start_listener(host: str, port: int, counts: Callable[[], dict[str, int]]) -> None:
    """Serve ``/metrics`` on ``host:port`` from a thread of this process: every worker's
    numbers (from ``PROMETHEUS_MULTIPROC_DIR``) and the store's counts."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(StoreCounts(counts))
    start_http_server(port, addr=host, registry=registry)
