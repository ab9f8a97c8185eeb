"""The ``/v2`` ASGI app: one path match, the handler, and the OCI error table.

The registry's hot path skips Starlette's router and middleware stack (a route scan, two
exception wrappers and a ``send`` wrapper per request) but keeps its Request and Response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cargobay.api.oci.body import finish_body
from cargobay.api.oci.errors import error_response, handle_domain_error
from cargobay.errors import CargobayError
from cargobay.services.container import Services

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

#: ``/v2/<name>/<endpoint>``; the name is as short as lets the endpoint match.
_PATH = re.compile(
    r"/v2/(?P<name>.+?)/(?:"
    r"(?P<uploads>blobs/uploads)(?:/(?P<upload_id>[^/]*))?"
    r"|blobs/(?P<digest>[^/]+)"
    r"|manifests/(?P<reference>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|referrers/(?P<subject>[^/]+)"
    r")"
)


class Route:
    __slots__ = ("handler", "methods")

    def __init__(self, methods: set[str], handler: Handler) -> None:
        self.methods = frozenset(methods | ({"HEAD"} if "GET" in methods else set()))
        self.handler = handler


def _match(path: str) -> tuple[str, dict[str, str]] | None:
    if path in ("/v2/", "/v2"):
        return "base", {}
    if path == "/v2/_catalog":
        return "catalog", {}
    if path == "/token":
        return "token", {}
    m = _PATH.fullmatch(path)
    if m is None:
        return None
    name = m.group("name")
    if m.group("uploads"):
        upload_id = m.group("upload_id")
        if upload_id:
            return "upload_session", {"name": name, "upload_id": upload_id}
        return "upload_start", {"name": name}
    if m.group("digest") is not None:
        return "blob", {"name": name, "digest": m.group("digest")}
    if m.group("reference") is not None:
        return "manifest", {"name": name, "reference": m.group("reference")}
    if m.group("tags"):
        return "tags", {"name": name}
    return "referrers", {"name": name, "digest": m.group("subject")}


class OciApp:
    """Serves ``/v2``; ``routes`` maps endpoint names (see ``_match``) to handlers."""

    def __init__(self, routes: Mapping[str, Route], services: Services) -> None:
        self.routes = routes
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self._respond(scope, request)
        except CargobayError as exc:
            response = await handle_domain_error(request, exc)
            # Errors raised before a handler read the body (authentication, a database that
            # is down) leave it unread: read it now, or close the connection.
            if not await finish_body(request):
                response.headers["Connection"] = "close"
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = error_response("UNKNOWN", 500, "internal error", None)
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, request: Request) -> Response:
        matched = _match(scope["path"])
        if matched is None:
            return error_response("NOT_FOUND", 404, "no such endpoint", {"path": scope["path"]})
        endpoint, params = matched
        scope["cargobay.endpoint"] = endpoint  # the route template, for metrics and logs
        route = self.routes[endpoint]
        if scope["method"] not in route.methods:
            return error_response(
                "UNSUPPORTED",
                405,
                f"{scope['method']} is not supported here",
                None,
                {"Allow": ", ".join(sorted(route.methods))},
            )
        scope["path_params"] = params
        scope["cargobay"] = self.services
        return await route.handler(request)
