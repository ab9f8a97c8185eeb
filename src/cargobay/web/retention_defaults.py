"""The default retention policy of an owner's packages, on a page of its own: the signed-in
user's (``/settings/packages/retention``) and an organization's
(``/orgs/{org}/settings/packages/retention``), for whoever the REST API lets manage it (the
user, the organization's owners, site administrators)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cargobay.services.signin import Session
from cargobay.web.app import Web, form_handler, page
from cargobay.web.retention import policy_of, service

_SAVED = {"saved": "Default policy saved.", "removed": "Default policy removed."}


def _owner(request: Request, session: Session) -> tuple[str, str]:
    """The login and type of the owner the page is about."""
    org = request.path_params.get("org")
    if org is not None:
        return str(org).lower(), "Organization"
    return session.principal.login, "User"


@page
async def defaults_page(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    login, owner_type = _owner(request, session)
    policy = await service(web).owner_policy(session.principal, login, owner_type)
    return web.render(
        request,
        "retention_defaults.html",
        {
            "owner": login,
            "policy": policy,
            "message": _SAVED.get(request.query_params.get("done", ""), ""),
        },
    )


@form_handler
async def set_defaults(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    """``clear=on`` removes the default; else the rules (empty fields: off)."""
    login, owner_type = _owner(request, session)
    if form.get("clear") == "on":
        await service(web).clear_owner_policy(session.principal, login, owner_type)
        done = "removed"
    else:
        await service(web).set_owner_policy(session.principal, login, owner_type, policy_of(form))
        done = "saved"
    return RedirectResponse(f"{request.url.path}?done={done}", status_code=303)
