"""OpenTelemetry traces from a real ``cargobay serve`` to an OTLP/HTTP receiver in this test
(protobuf ``ExportTraceServiceRequest`` on ``POST /v1/traces``): with ``CARGOBAY_OTEL_ENDPOINT``
or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``, a push and a pull give server spans for the
requests, with SQL spans as their children in the same trace; no span carries the credentials
the client sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_rest_clients import push_image

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no tracing"),
]


class OtlpReceiver:
    """Collects the spans exported to it, as ``(service name, span)`` pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self.paths: list[str] = []
        self.raw: list[bytes] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with outer.arrived:
                    outer.paths.append(self.path)
                    outer.raw.append(body)
                    for resource in request.resource_spans:
                        service = next(
                            (
                                a.value.string_value
                                for a in resource.resource.attributes
                                if a.key == "service.name"
                            ),
                            "",
                        )
                        for scope in resource.scope_spans:
                            outer.spans.extend((service, span) for span in scope.spans)
                    outer.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; got spans {[s.name for _, s in self.spans]}"
                self.arrived.wait(min(left, 0.5))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    found = OtlpReceiver()
    yield found
    found.stop()


def attributes(span: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for a in span.attributes:
        value = a.value
        found[a.key] = value.string_value or value.int_value or value.bool_value
    return found


@pytest.mark.parametrize("variable", ["CARGOBAY_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"])
def test_requests_are_traced_with_their_sql_statements(
    server_factory: Any, receiver: OtlpReceiver, variable: str
) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(variable, receiver.url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        server = server_factory()
    repo = "tracing/app"
    server.create_namespace("tracing")
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as http:
        digest, _ = push_image(http, repo, "v1")
        pulled = http.get(
            f"/v2/{repo}/manifests/v1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert pulled.status_code == 200

    def request_span(method: str) -> Any:
        for _, span in receiver.spans:
            got = attributes(span)
            target = str(got.get("http.target") or got.get("url.path") or "")
            if (
                span.kind == span.SPAN_KIND_SERVER
                and span.name == f"{method} /v2"
                and target.endswith(f"/{repo}/manifests/v1")
            ):
                return span
        return None

    receiver.wait_for(lambda: request_span("PUT") is not None and request_span("GET") is not None)
    assert all(path == "/v1/traces" for path in receiver.paths)
    assert {service for service, _ in receiver.spans} == {"cargobay"}
    pulled_span = request_span("GET")
    status = attributes(pulled_span)
    assert (status.get("http.status_code") or status.get("http.response.status_code")) == 200
    # The manifest PUT wrote to the database: SQL spans in its trace, under the request's span.
    pushed_span = request_span("PUT")
    sql = [
        s for _, s in receiver.spans if s.trace_id == pushed_span.trace_id and s is not pushed_span
    ]
    assert any(s.name.startswith("INSERT") for s in sql), [s.name for s in sql]
    assert all(s.kind == s.SPAN_KIND_CLIENT for s in sql)
    assert any(
        (attributes(s).get("db.system") or attributes(s).get("db.system.name")) == "sqlite"
        for s in sql
    )
    # Only requests start traces (the background jobs' statements every second are not sent).
    roots = [s for _, s in receiver.spans if not s.parent_span_id]
    assert roots and all(s.kind == s.SPAN_KIND_SERVER for s in roots)
    # Span names never hold a repository name or a digest; nothing exported holds the token.
    assert not any(repo in s.name or digest in s.name for _, s in receiver.spans)
    assert server.token is not None
    assert not any(server.token.encode() in raw for raw in receiver.raw)
