"""``/healthz`` (liveness: the process serves requests) and ``/readyz`` (readiness: the database
and the blob store answer). Load balancers send traffic only to ready replicas."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cargobay.services.health import HealthService

RETRY_AFTER = "5"


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    health: HealthService = request.app.state.health
    checks = await health.readiness()
    ready = all(v == "ok" for v in checks.values())
    headers = {"Cache-Control": "no-store"}
    if not ready:
        headers["Retry-After"] = RETRY_AFTER
    body = {"status": "ok" if ready else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)


ROUTES = [
    Route("/healthz", healthz, methods=["GET", "HEAD"]),
    Route("/readyz", readyz, methods=["GET", "HEAD"]),
]
