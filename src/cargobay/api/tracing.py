"""Optional OpenTelemetry traces: a server span per request (ASGI) with a child span per SQL
statement (SQLAlchemy), exported over OTLP/HTTP (protobuf).

Off unless an endpoint is set: ``otel_endpoint`` (``CARGOBAY_OTEL_ENDPOINT``) or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). Both name the
collector's base URL, e.g. ``http://otel-collector:4318``; spans go to ``/v1/traces`` there.
The other standard ``OTEL_*`` variables apply (``OTEL_SERVICE_NAME``, default ``cargobay``;
``OTEL_EXPORTER_OTLP_HEADERS``; ``OTEL_BSP_*`` for batching). The libraries come with the
``tracing`` extra (``pip install 'cargobay[tracing]'``) and are imported only when tracing is on.

Request headers are not recorded (``Authorization`` never is); span names use the method and,
for the registry API, no raw path.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from starlette.types import ASGIApp

STANDARD = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def endpoint_of(configured: str) -> str | None:
    """The collector's base URL when tracing is on (the setting wins over the standard
    variables), else None."""
    if configured:
        return configured
    return next((os.environ[name] for name in STANDARD if os.environ.get(name)), None)


class Tracing:
    """The tracer provider of this process: :meth:`wrap` instruments the app and the engine,
    :meth:`shutdown` sends the spans still batched."""

    def __init__(self, configured: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise SystemExit(
                "cargobay: tracing is on (an OTLP endpoint is set) but the OpenTelemetry"
                " libraries are missing: pip install 'cargobay[tracing]'"
            ) from None
        resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "cargobay")})
        self.provider = TracerProvider(resource=resource, sampler=_requests_only())
        # The setting is a base URL, like the standard variable; the exporter reads that one
        # itself (and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which names the full URL).
        kwargs: dict[str, Any] = {}
        if configured:
            kwargs["endpoint"] = configured.rstrip("/") + "/v1/traces"
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(**kwargs)))

    def wrap(self, app: ASGIApp, engine: sa.Engine) -> ASGIApp:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # The instrumentation declares SQLAlchemy < 2.1 and would silently do nothing on 2.1;
        # the engine events it hooks are unchanged in 2.1 (tests/e2e/test_tracing.py).
        SQLAlchemyInstrumentor().instrument(
            engine=engine, tracer_provider=self.provider, skip_dep_check=True
        )
        wrapped: ASGIApp = OpenTelemetryMiddleware(
            app,
            tracer_provider=self.provider,
            default_span_details=_span_details,
            exclude_spans=["receive", "send"],
        )
        return wrapped

    def shutdown(self) -> None:
        self.provider.shutdown()


def _requests_only() -> Any:
    """Sample every request and what it does (its SQL statements), but no trace that starts
    elsewhere: the background jobs' statements, every second, would bury the requests."""
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind

    class RequestsOnly(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind is SpanKind.SERVER:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            return SamplingResult(Decision.DROP)

        def get_description(self) -> str:
            return "RequestsOnly"

    return ParentBased(root=RequestsOnly())


def _span_details(scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The span's name: the method, and the registry API's first path segment (``/v2``)
    or the site's section (``/api/v3``, ``/orgs``...), never a repository name or digest."""
    method = str(scope.get("method") or scope.get("type", "")).upper()
    parts = str(scope.get("path", "")).split("/")
    head = "/".join(parts[:3]) if parts[1:2] == ["api"] else "/".join(parts[:2])
    return f"{method} {head or '/'}", {}
