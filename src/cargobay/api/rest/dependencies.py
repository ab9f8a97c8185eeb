"""What every REST router shares: the services, the caller, pagination and GitHub's error shape
in the OpenAPI document. Routers import this, never :mod:`cargobay.api.rest.app` (which
registers them, see :mod:`cargobay.api.rest.routers`)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from cargobay import errors
from cargobay.api.rest.schemas import Message, Urls, ValidationFailed
from cargobay.auth.principal import Principal
from cargobay.services.container import Services
from cargobay.services.events import bind_principal
from cargobay.services.package_core import Page

#: Documented on every operation: GitHub's error shape for each status the API answers with.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Requires authentication, or bad credentials"},
    403: {"model": Message, "description": "A scope or a role is missing"},
    404: {"model": Message, "description": "Not found, or not visible to the caller"},
    409: {"model": Message, "description": "Conflicts with the current state"},
    422: {"model": ValidationFailed, "description": "Validation failed"},
    429: {"model": Message, "description": "Too many failed sign-ins"},
    503: {"model": Message, "description": "The database or the blob store is unavailable"},
}


def services(request: Request) -> Services:
    """The registry's services (:class:`~cargobay.services.container.Services`)."""
    value: Services = request.app.state.cargobay
    return value


def urls(request: Request) -> Urls:
    value: Urls = request.app.state.urls
    return value


async def principal(request: Request) -> Principal:
    """Who is calling: ``Authorization: Bearer <token>``, ``token <token>`` or Basic with a
    token as the password; anonymous without the header."""
    header = request.headers.get("authorization")
    if header and header.lower().startswith("token "):
        header = "Bearer " + header[6:]
    client = request.client.host if request.client else ""
    who: Principal = await services(request).access.authenticate(header, client)
    if who.registry_grant is not None:
        raise errors.Unauthenticated("Bad credentials: registry tokens are for /v2 only")
    bind_principal(who)
    return who


Caller = Annotated[Principal, Depends(principal)]


def page(
    page: Annotated[int, Query(ge=1, description="Page number, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=100, description="Results per page (max 100)")] = 30,
) -> Page:
    return Page(page, per_page)


Paging = Annotated[Page, Depends(page)]


def link_header(request: Request, page: Page, total: int) -> dict[str, str]:
    """GitHub's ``Link`` header: ``next`` and ``last`` (and ``first``, ``prev``)."""
    last = max(1, math.ceil(total / page.size))
    links = []

    def url(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=page.size))

    if page.number < last:
        links.append(f'<{url(page.number + 1)}>; rel="next"')
        links.append(f'<{url(last)}>; rel="last"')
    if page.number > 1:
        links.append(f'<{url(1)}>; rel="first"')
        links.append(f'<{url(min(page.number - 1, last))}>; rel="prev"')
    return {"Link": ", ".join(links)} if links else {}
