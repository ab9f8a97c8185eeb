"""The web pages: server-rendered (Jinja2, autoescaped), no inline script (a strict
Content-Security-Policy), every form protected against CSRF, sessions in the database.

Handlers live in :mod:`cargobay.web.pages` (reading) and :mod:`cargobay.web.forms` (changing);
this module holds what they share.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargobay import errors
from cargobay.auth.principal import Principal
from cargobay.errors import CargobayError
from cargobay.services.container import Services
from cargobay.services.events import bind_principal
from cargobay.services.package_core import Forbidden, ScopeMissing
from cargobay.services.packages import PackageService
from cargobay.services.signin import Session, SignIn

HERE = Path(__file__).parent
SESSION_COOKIE = "cargobay_session"
LOGIN_CSRF_COOKIE = "cargobay_login_csrf"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the pages' security headers to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _size(value: int) -> str:
    number = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if number < 1000 or unit == "TB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1000
    return f"{value} B"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def safe_link(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL a page may link to; anything else (``javascript:``,
    ``data:``...) is shown as text, never as a live link."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = _size
    env.filters["when"] = _when
    env.filters["short"] = _short
    env.globals["safe_link"] = safe_link
    return env


#: Domain error -> status of the page that explains it, looked up along the exception's MRO;
#: any other domain error is a request that can't be carried out (400).
PAGE_STATUS: dict[type[CargobayError], tuple[str, int]] = {
    errors.NotFound: ("Not found", 404),
    errors.NameUnknown: ("Not found", 404),
    errors.ManifestUnknown: ("Not found", 404),
    errors.BlobUnknown: ("Not found", 404),
    errors.Unauthenticated: ("Sign in", 401),
    errors.Denied: ("Not allowed", 403),
    Forbidden: ("Not allowed", 403),
    ScopeMissing: ("Not allowed", 403),
    errors.TooManyRequests: ("Too many attempts", 429),
    errors.Unavailable: ("Unavailable", 503),
}


def page_status(exc: CargobayError) -> tuple[str, int]:
    """The title and status of the page a domain error is shown on."""
    for cls in type(exc).__mro__:
        if cls in PAGE_STATUS:
            return PAGE_STATUS[cls]
    return ("Not possible", 400)


class Web:
    """What the handlers share: services, templates, the session of a request."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.services = services
        self.packages: PackageService = services.packages
        self.signin: SignIn = services.signin
        self.templates = make_templates()
        self.base_url: str = settings.public_base_url
        self.registry_host: str = settings.registry_address
        self.isolated: bool = settings.isolated
        self.secure_cookies = self.base_url.startswith("https://")

    async def session(self, request: Request) -> Session | None:
        cached = request.scope.get("cargobay.session", False)
        if cached is not False:
            return cached  # type: ignore[no-any-return]
        session = await self.signin.session(request.cookies.get(SESSION_COOKIE))
        request.scope["cargobay.session"] = session
        if session is not None:
            bind_principal(session.principal)
        return session

    async def viewer(self, request: Request) -> Principal:
        session = await self.session(request)
        return session.principal if session else Principal(web=True)

    def render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        session = request.scope.get("cargobay.session")
        body = self.templates.get_template(template).render(
            request=request,
            viewer=session.principal if session else None,
            csrf=session.csrf if session else "",
            registry_host=self.registry_host,
            isolated=self.isolated,
            **context,
        )
        return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    def error_page(self, request: Request, exc: CargobayError) -> HTMLResponse:
        """A domain error as a page: its status (see :data:`PAGE_STATUS`) and message; a
        backing service that is down says when to retry."""
        title, status = page_status(exc)
        response = self.render(
            request, "error.html", {"title": title, "message": exc.message}, status
        )
        if isinstance(exc, errors.Unavailable):
            response.headers["Retry-After"] = "5"
        return response

    def not_found(self, request: Request, message: str = "Not found") -> HTMLResponse:
        return self.render(request, "error.html", {"title": "Not found", "message": message}, 404)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            secure=self.secure_cookies,
            samesite="lax",
            path="/",
        )

    def new_login_csrf(self) -> str:
        return secrets.token_urlsafe(24)


Handler = Callable[[Request], Awaitable[Response]]


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def page(handler: Callable[[Request, Web], Awaitable[Response]]) -> Handler:
    """A page handler: domain errors become pages (a package the viewer can't see is exactly
    'Not found')."""

    async def wrapped(request: Request) -> Response:
        web = web_of(request)
        try:
            await web.session(request)
            return await handler(request, web)
        except CargobayError as exc:
            return web.error_page(request, exc)

    wrapped.__name__ = handler.__name__
    return wrapped


def form_handler(
    handler: Callable[[Request, Web, Session, dict[str, str]], Awaitable[Response]],
) -> Handler:
    """A form POST: needs a session and the session's CSRF token, else nothing happens."""

    async def wrapped(request: Request) -> Response:
        web = web_of(request)
        try:
            session = await web.session(request)
        except CargobayError as exc:
            return web.error_page(request, exc)
        if session is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not web.signin.valid_csrf(session, fields.get("csrf")):
            return web.render(
                request,
                "error.html",
                {
                    "title": "Form expired",
                    "message": "The form expired. Go back, reload and retry.",
                },
                403,
            )
        try:
            return await handler(request, web, session, fields)
        except CargobayError as exc:
            return web.error_page(request, exc)

    wrapped.__name__ = handler.__name__
    return wrapped
