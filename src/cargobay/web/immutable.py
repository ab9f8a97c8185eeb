"""The immutable tags form of a package's settings page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargobay.services.immutability import ImmutableTagService
from cargobay.services.signin import Session
from cargobay.web.app import Web, form_handler
from cargobay.web.forms import _back, _package


def service(web: Web) -> ImmutableTagService:
    value: ImmutableTagService = web.services.immutability
    return value


@form_handler
async def set_immutable_tags(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    """``patterns``: glob patterns separated by spaces, commas or new lines (empty: none)."""
    package = await _package(web, session, request)
    patterns = form.get("patterns", "").replace(",", " ").split()
    await service(web).replace(
        session.principal, package.owner_login, package.owner_type, package.package_name, patterns
    )
    return _back(package, web, "immutable tags saved")
