"""The repository settings page for trusted publishing: the trust policies of a source
repository, added and removed by its admins (anyone else gets 'Not found'). Every POST carries
the session's CSRF token (:func:`~cargobay.web.app.form_handler`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cargobay.errors import NotFound
from cargobay.oci.numbers import parse_id
from cargobay.services.package_core import Forbidden, ScopeMissing
from cargobay.services.signin import Session
from cargobay.services.trust_policies import parse_conditions
from cargobay.services.trusted_publishing import TrustedPublishing
from cargobay.web.app import Web, form_handler, page


def _service(web: Web) -> TrustedPublishing:
    value: TrustedPublishing = web.services.trusted_publishing
    return value


def _repository(request: Request) -> str:
    return f"{request.path_params['owner']}/{request.path_params['repo']}".lower()


def _url(repository: str, done: str = "") -> str:
    return f"/{repository}/settings/trust" + (f"?done={done}" if done else "")


@page
async def trust_page(request: Request, web: Web) -> Response:
    session = await web.session(request)
    repository = _repository(request)
    if session is None:
        raise NotFound("Not found")
    service = _service(web)
    try:
        policies = await service.policies_as(session.principal, repository)
    except (Forbidden, ScopeMissing):
        raise NotFound("Not found") from None
    return web.render(
        request,
        "repo_trust.html",
        {
            "repository": repository,
            "policies": policies,
            "issuers": service.verifier.issuers,
            "default_audience": service.default_audience,
            "message": request.query_params.get("done", "")[:20],
        },
    )


@form_handler
async def add_policy(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    repository = _repository(request)
    lines = [line for line in form.get("claims", "").splitlines() if line.strip()]
    try:
        await _service(web).add_as(
            session.principal,
            repository,
            form.get("issuer", "").strip(),
            form.get("audience", "").strip() or None,
            parse_conditions(lines),
        )
    except (Forbidden, ScopeMissing):
        raise NotFound("Not found") from None
    return RedirectResponse(_url(repository, "added"), status_code=303)


@form_handler
async def remove_policy(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    repository = _repository(request)
    policy_id = parse_id(request.path_params["policy_id"])
    if policy_id is None:
        raise NotFound("No such trust policy.")
    try:
        await _service(web).remove_as(session.principal, repository, policy_id)
    except (Forbidden, ScopeMissing):
        raise NotFound("Not found") from None
    return RedirectResponse(_url(repository, "removed"), status_code=303)
