"""The webhook settings pages: an organization's hooks for its owners
(``/orgs/{org}/settings/hooks``), the viewer's own (``/settings/hooks``) and the site's for
administrators (``/admin/hooks``): add and remove hooks, read each one's recent deliveries
(status, answer, duration) and redeliver one. Anyone else gets 'Not found'. Every POST carries
the session's CSRF token (:func:`~cargobay.web.app.form_handler`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cargobay.errors import NotFound
from cargobay.oci.numbers import parse_id, parse_unsigned
from cargobay.services.package_core import Forbidden
from cargobay.services.signin import Session
from cargobay.services.webhook_payloads import EVENT_TYPES
from cargobay.services.webhooks import HookSpec, Target, Webhooks
from cargobay.web.app import Web, form_handler, page

RECENT = 10


def _service(web: Web) -> Webhooks:
    value: Webhooks = web.services.webhooks
    return value


def _target(request: Request) -> tuple[Target, str]:
    """Whose hooks the path names, and the page's path."""
    org = request.path_params.get("org")
    if org is not None:
        return Target("org", org), f"/orgs/{org.lower()}/settings/hooks"
    if request.url.path.startswith("/admin/"):
        return Target("site"), "/admin/hooks"
    return Target("user"), "/settings/hooks"


@page
async def hooks_page(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        raise NotFound("Not found")
    target, path = _target(request)
    service = _service(web)
    try:
        hooks = await service.hooks(session.principal, target)
        recent = {
            h.id: await service.deliveries(
                session.principal, target, h.id, before=None, limit=RECENT
            )
            for h in hooks
        }
    except Forbidden:
        raise NotFound("Not found") from None
    whose = {"org": target.login, "user": "your account", "site": "the whole site"}[target.kind]
    return web.render(
        request,
        "webhooks.html",
        {
            "title": f"Webhooks of {whose}",
            "path": path,
            "hooks": hooks,
            "recent": recent,
            "event_types": EVENT_TYPES,
            "message": request.query_params.get("done", "")[:20],
        },
    )


@form_handler
async def add_hook(request: Request, web: Web, session: Session, form: dict[str, str]) -> Response:
    target, path = _target(request)
    events = tuple(e for e in EVENT_TYPES if form.get(f"event_{e}"))
    spec = HookSpec(
        url=form.get("url", "").strip(),
        secret=form.get("secret", "") or None,
        content_type=form.get("content_type", "json"),
        events=events or None,
        active=True,
    )
    try:
        await _service(web).create(session.principal, target, spec)
    except Forbidden:
        raise NotFound("Not found") from None
    return RedirectResponse(f"{path}?done=added", status_code=303)


@form_handler
async def remove_hook(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    target, path = _target(request)
    hook_id = parse_id(request.path_params["hook_id"])
    if hook_id is None:
        raise NotFound("No such webhook.")
    try:
        await _service(web).delete(session.principal, target, hook_id)
    except Forbidden:
        raise NotFound("Not found") from None
    return RedirectResponse(f"{path}?done=removed", status_code=303)


@form_handler
async def redeliver(request: Request, web: Web, session: Session, form: dict[str, str]) -> Response:
    target, path = _target(request)
    hook_id = parse_id(request.path_params["hook_id"])
    delivery_id = parse_unsigned(request.path_params["delivery_id"], 2**63 - 1)
    if hook_id is None or not delivery_id:
        raise NotFound("No such delivery.")
    try:
        await _service(web).redeliver(session.principal, target, hook_id, delivery_id)
    except Forbidden:
        raise NotFound("Not found") from None
    return RedirectResponse(f"{path}?done=redelivered", status_code=303)
