"""The audit-log pages: the viewer's own log (``/settings/audit-log``), an organization's for its
owners (``/orgs/{org}/settings/audit-log``) and the site's for administrators
(``/admin/audit-log``), with filters (action, actor, package, since) and older pages."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cargobay.oci.numbers import parse_unsigned
from cargobay.services.audit import AuditForbidden, AuditLog, AuditQuery, InvalidFilter
from cargobay.services.events import Action, Event
from cargobay.web.app import Web, page

PAGE = 50


def _audit(web: Web) -> AuditLog:
    value: AuditLog = web.services.audit
    return value


def _query(request: Request) -> tuple[AuditQuery, dict[str, str], int | None]:
    params = request.query_params
    filters = {k: params.get(k, "").strip()[:200] for k in ("action", "actor", "package", "since")}
    since = None
    if filters["since"]:
        try:
            since = datetime.fromisoformat(filters["since"])
        except ValueError:
            raise InvalidFilter("Since: use a date like 2026-12-01.") from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    query = AuditQuery(
        action=filters["action"] or None,
        actor=filters["actor"] or None,
        package=filters["package"] or None,
        since=since,
    )
    after = params.get("after", "")
    return query, filters, parse_unsigned(after, 2**63 - 1)


async def _render(
    request: Request, web: Web, title: str, found: list[Event], filters: dict[str, str]
) -> Response:
    older = None
    if len(found) == PAGE and found[-1].id is not None:
        kept = {k: v for k, v in filters.items() if v}
        older = f"{request.url.path}?{urlencode({**kept, 'after': found[-1].id})}"
    return web.render(
        request,
        "audit.html",
        {
            "title": title,
            "entries": found,
            "filters": filters,
            "actions": [a.value for a in Action],
            "older": older,
        },
    )


def _forbidden(request: Request, web: Web, exc: AuditForbidden) -> Response:
    context = {"title": "Not allowed", "message": exc.message}
    return web.render(request, "error.html", context, 403)


def _sign_in(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@page
async def own_log(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        return _sign_in(request)
    query, filters, after = _query(request)
    found = await _audit(web).for_user(session.principal, query, after=after, limit=PAGE)
    return await _render(request, web, "Your audit log", found, filters)


@page
async def org_log(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        return _sign_in(request)
    org = request.path_params["org"]
    query, filters, after = _query(request)
    try:
        found = await _audit(web).for_org(session.principal, org, query, after=after, limit=PAGE)
    except AuditForbidden as exc:
        return _forbidden(request, web, exc)
    return await _render(request, web, f"Audit log of {org.lower()}", found, filters)


@page
async def site_log(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        return _sign_in(request)
    query, filters, after = _query(request)
    try:
        found = await _audit(web).for_site(session.principal, query, after=after, limit=PAGE)
    except AuditForbidden as exc:
        return _forbidden(request, web, exc)
    return await _render(request, web, "Audit log of the site", found, filters)
