"""Server-rendered web pages (Jinja2) and their static assets."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cargobay.errors import CargobayError
from cargobay.services.container import Services
from cargobay.web import (
    audit,
    forms,
    immutable,
    pages,
    retention,
    retention_defaults,
    trust,
    webhooks,
)
from cargobay.web.app import HERE, SecurityHeaders, Web

GET = ["GET", "HEAD"]
POST = ["POST"]

ROUTES = [
    Route("/", pages.home, methods=GET),
    Route("/login", pages.login_form, methods=GET),
    Route("/login", pages.login, methods=POST),
    Route("/logout", forms.logout, methods=POST),
    Route("/settings/tokens", forms.tokens_page, methods=GET),
    Route("/settings/tokens", forms.create_token, methods=POST),
    Route("/settings/tokens/new", forms.new_token_page, methods=GET),
    Route("/settings/tokens/{token_id}/revoke", forms.revoke_token, methods=POST),
    Route("/settings/audit-log", audit.own_log, methods=GET),
    Route("/orgs/{org}/settings/audit-log", audit.org_log, methods=GET),
    Route("/admin/audit-log", audit.site_log, methods=GET),
    *(
        route
        for base in ("/settings/hooks", "/orgs/{org}/settings/hooks", "/admin/hooks")
        for route in (
            Route(base, webhooks.hooks_page, methods=GET),
            Route(base, webhooks.add_hook, methods=POST),
            Route(base + "/{hook_id}/delete", webhooks.remove_hook, methods=POST),
            Route(
                base + "/{hook_id}/deliveries/{delivery_id}/redeliver",
                webhooks.redeliver,
                methods=POST,
            ),
        )
    ),
    Route("/settings/packages/retention", retention_defaults.defaults_page, methods=GET),
    Route("/settings/packages/retention", retention_defaults.set_defaults, methods=POST),
    Route("/orgs/{org}/settings/packages/retention", retention_defaults.defaults_page, methods=GET),
    Route("/orgs/{org}/settings/packages/retention", retention_defaults.set_defaults, methods=POST),
    Route("/orgs/{org}/settings/packages", forms.org_settings_page, methods=GET),
    Route("/orgs/{org}/settings/packages", forms.org_settings, methods=POST),
    Route("/packages/{package_id}/visibility", forms.change_visibility, methods=POST),
    Route("/packages/{package_id}/inherit", forms.change_inherit, methods=POST),
    Route("/packages/{package_id}/access", forms.grant, methods=POST),
    Route("/packages/{package_id}/repository", forms.link, methods=POST),
    Route("/packages/{package_id}/immutable-tags", immutable.set_immutable_tags, methods=POST),
    Route("/packages/{package_id}/retention", retention.set_retention, methods=POST),
    Route("/packages/{package_id}/retention/preview", retention.preview, methods=GET),
    Route("/packages/{package_id}/delete", forms.delete_package, methods=POST),
    Route("/packages/{package_id}/restore", forms.restore_package, methods=POST),
    Route(
        "/packages/{package_id}/versions/{version_id}/delete", forms.delete_version, methods=POST
    ),
    Route(
        "/packages/{package_id}/versions/{version_id}/restore", forms.restore_version, methods=POST
    ),
    Route("/{owner}/{repo}/settings/trust", trust.trust_page, methods=GET),
    Route("/{owner}/{repo}/settings/trust", trust.add_policy, methods=POST),
    Route("/{owner}/{repo}/settings/trust/{policy_id}/delete", trust.remove_policy, methods=POST),
    Route("/{kind}/{owner}/packages", pages.packages_list, methods=GET),
    Route(
        "/{kind}/{owner}/packages/container/package/{name:path}", pages.package_page, methods=GET
    ),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    Route("/{owner}", pages.owner_redirect, methods=GET),
]


def create_web_app(services: Services) -> SecurityHeaders:
    web = Web(services)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        title = "Not found" if status == 404 else "Error"
        return web.render(request, "error.html", {"title": title, "message": title}, status)

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CargobayError)
        return web.error_page(request, exc)

    app = Starlette(
        routes=ROUTES,
        exception_handlers={404: not_found, 405: not_found, CargobayError: domain_error},
    )
    app.state.web = web
    return SecurityHeaders(app)
