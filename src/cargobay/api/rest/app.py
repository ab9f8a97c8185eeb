"""The GitHub-compatible REST API under ``/api/v3``: a FastAPI application (typed schemas, the
OpenAPI document at ``/api/v3/openapi.json``), GitHub's error shape and pagination."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from cargobay import errors
from cargobay.api.oci.errors import log_out_of_storage
from cargobay.api.rest.routers import ROUTERS
from cargobay.api.rest.schemas import Urls
from cargobay.services.accounts import InvalidInput
from cargobay.services.audit import AuditForbidden
from cargobay.services.container import Services
from cargobay.services.package_core import Forbidden, ScopeMissing

#: domain error -> HTTP status, looked up along the exception's MRO. Every error of
#: :mod:`cargobay.errors` is here (a test checks it); one that is not answers 400.
STATUS: dict[type[errors.CargobayError], int] = {
    errors.NotFound: 404,
    errors.NameUnknown: 404,
    errors.ManifestUnknown: 404,
    errors.BlobUnknown: 404,
    errors.BlobUploadUnknown: 404,
    errors.Unauthenticated: 401,
    ScopeMissing: 403,
    Forbidden: 403,
    AuditForbidden: 403,
    errors.Denied: 403,
    errors.Conflict: 409,
    errors.DeletionRefused: 400,
    errors.AlreadyExists: 422,
    InvalidInput: 422,
    errors.NameInvalid: 422,
    errors.DigestInvalid: 422,
    errors.TagInvalid: 422,
    errors.ManifestInvalid: 422,
    errors.ManifestBlobUnknown: 422,
    errors.PaginationInvalid: 422,
    errors.SizeInvalid: 422,
    errors.BlobUploadInvalid: 422,
    errors.Unsupported: 422,
    errors.UploadOffsetMismatch: 416,
    errors.RangeInvalid: 416,
    errors.TooLarge: 413,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
    errors.InsufficientStorage: 507,
}


def _status(exc: errors.CargobayError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


class RestApp:
    """The FastAPI app, with package names that contain ``/`` kept whole: GitHub clients send
    them URL-encoded (``team%2Fapi``), which routing would otherwise split."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        original = scope
        if scope["type"] == "http":
            if scope["method"] in ("POST", "PUT", "PATCH"):
                # Bodies are JSON whatever the Content-Type says (GitHub's examples use
                # `curl -d`, which sends application/x-www-form-urlencoded).
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = dict(scope, headers=[*headers, (b"content-type", b"application/json")])
            raw: bytes = scope.get("raw_path") or b""
            if b"%2f" in raw.lower():
                # Decode everything but the encoded slashes; handlers decode those in names.
                kept = raw.split(b"?", 1)[0].replace(b"%2F", b"%252F").replace(b"%2f", b"%252F")
                scope = dict(scope, path=unquote(kept.decode("latin-1")))
        try:
            await self.app(scope, receive, send)
        finally:
            if scope is not original and "route" in scope:
                original["route"] = scope["route"]  # the route template, for metrics and logs


def create_rest_app(cargobay: Services) -> RestApp:
    settings = cargobay.settings
    app = FastAPI(
        title="cargobay REST API",
        version="2022-11-28",
        description=(
            "GitHub-compatible packages API (`/user/packages`, `/orgs/{org}/packages`, ...)"
            " plus the administration of users, organizations, teams, repositories and tokens."
            " Authenticate with `Authorization: Bearer <token>`."
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        servers=[{"url": f"{settings.public_base_url}/api/v3"}],
    )
    app.state.cargobay = cargobay
    app.state.urls = Urls(settings.public_base_url)
    documentation = f"{settings.public_base_url}/api/v3/openapi.json"

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(
            {"message": message, "documentation_url": documentation}, status, headers=headers
        )

    @app.exception_handler(errors.CargobayError)
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.CargobayError)
        headers: dict[str, str] = {}
        if isinstance(exc, ScopeMissing):
            headers["X-Accepted-OAuth-Scopes"] = ", ".join(s.value for s in exc.needed)
            headers["X-OAuth-Scopes"] = ", ".join(sorted(s.value for s in exc.has or ()))
        if isinstance(exc, errors.Unavailable):
            headers["Retry-After"] = "5"
        if isinstance(exc, errors.InsufficientStorage):
            log_out_of_storage(exc)
        return error(_status(exc), exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = [
            {
                "resource": "Request",
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]),
                "code": "invalid",
                "message": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        return JSONResponse(
            {"message": "Validation Failed", "errors": details, "documentation_url": documentation},
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = "Not Found" if exc.status_code == 404 else str(exc.detail)
        return error(exc.status_code, message)

    for router in ROUTERS:
        app.include_router(router)
    return RestApp(app)
