"""Prometheus metrics: what each worker counts (requests by route template, method and status
with their latency, bytes in and out, sign-in rejections, database connections in use), and the
listener that serves them all, summed over the workers.

The workers write to ``PROMETHEUS_MULTIPROC_DIR`` (set by ``cargobay serve`` before they
start); the listener runs in the serving process, on its own address (127.0.0.1 by default),
never on the public port. Labels are bounded: a route template, never a path, digest or name.
"""

from __future__ import annotations

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
#: Where a 429 means the sign-in limiter refused.
SIGN_IN_ROUTES = frozenset({"/token", "/login", "/v2/", "other"})

REQUESTS = Counter(
    "registry_http_requests",
    "HTTP requests by route, method and status",
    ["handler", "method", "code"],
)
DURATION = Histogram(
    "registry_http_request_duration_seconds",
    "Time to answer a request, by route and method",
    ["handler", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECEIVED = Counter("registry_http_received_bytes", "Request body bytes received", ["handler"])
SENT = Counter("registry_http_sent_bytes", "Response body bytes sent", ["handler"])
IN_FLIGHT = Gauge(
    "registry_http_in_flight_requests",
    "Requests being answered",
    ["handler"],
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


class Metrics:
    """ASGI middleware counting every HTTP request of the app it wraps."""

    def __init__(self, app: ASGIApp, pool_in_use: Callable[[], int] | None = None) -> None:
        self.app = app
        self.pool_in_use = pool_in_use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        received = 0
        sent = 0
        status = 500
        declared: int | None = None

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal sent, status, declared
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", ()):
                    if key.lower() == b"content-length":
                        declared = int(value) if value.isdigit() else None
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        flight = IN_FLIGHT.labels("all")
        flight.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            flight.dec()
            self._record(scope, status, start, received, sent, declared)

    def _record(
        self,
        scope: Scope,
        status: int,
        start: float,
        received: int,
        sent: int,
        declared: int | None,
    ) -> None:
        handler = route_of(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        REQUESTS.labels(handler, method, str(status)).inc()
        DURATION.labels(handler, method).observe(time.perf_counter() - start)
        if received:
            RECEIVED.labels(handler).inc(received)
        # Files go out through the ``pathsend`` extension: no body passes through here.
        body = sent or (declared if scope["method"] != "HEAD" and declared else 0)
        if body:
            SENT.labels(handler).inc(body)
        if status == 429:
            SIGN_IN_REJECTED.labels(handler if handler in SIGN_IN_ROUTES else "other").inc()
        if self.pool_in_use is not None:
            DB_CONNECTIONS.set(self.pool_in_use())


def pool_in_use(engine: Any) -> Callable[[], int]:
    """Connections ``engine``'s pool has handed out (0 for pools that don't count)."""
    pool = engine.pool

    def count() -> int:
        checked = getattr(pool, "checkedout", None)
        return int(checked()) if callable(checked) else 0

    return count


class StoreCounts(Collector):
    """Gauges read from the metadata database at scrape time (at most every ``ttl`` seconds):
    blobs, manifests, and uploads in progress."""

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
        ):
            yield GaugeMetricFamily(f"cargobay_{name}", help_, value=values.get(name, 0))


def start_listener(host: str, port: int, counts: Callable[[], dict[str, int]]) -> None:
    """Serve ``/metrics`` on ``host:port`` from a thread of this process: every worker's
    numbers (from ``PROMETHEUS_MULTIPROC_DIR``) and the store's counts."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(StoreCounts(counts))
    start_http_server(port, addr=host, registry=registry)
