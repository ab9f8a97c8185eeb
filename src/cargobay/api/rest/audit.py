"""The audit log: GitHub's organization audit-log shape (``GET /orgs/{org}/audit-log``: entries
with ``@timestamp``, ``_document_id``, ``action``, ``actor``; the ``phrase`` search; cursor
pagination with ``after`` and a ``Link`` header), plus the caller's own log (``/user/audit-log``)
and the whole site's for administrators (``/admin/audit-log``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services
from cargobay.oci.numbers import parse_unsigned
from cargobay.services.audit import AuditLog, AuditQuery, InvalidFilter, entry
from cargobay.services.events import Event

router = APIRouter(responses=ERROR_RESPONSES, tags=["audit-log"])


class AuditLogEntry(BaseModel):
    timestamp: int = Field(alias="@timestamp", description="milliseconds since the epoch")
    document_id: str = Field(alias="_document_id", description="the entry's id")
    action: str
    actor: str | None = None
    actor_id: int | None = None
    actor_ip: str | None = None
    created_at: int
    org: str | None = None
    user: str | None = None
    package: str | None = None
    package_version_id: int | None = None
    digest: str | None = None
    token_id: int | None = None
    programmatic_access_type: str | None = None
    workflow_repository: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def audit_log(request: Request) -> AuditLog:
    value: AuditLog = services(request).audit
    return value


Audit = Annotated[AuditLog, Depends(audit_log)]


class Cursor(BaseModel):
    phrase: str
    after: int | None
    per_page: int


def cursor(
    phrase: Annotated[
        str,
        Query(
            max_length=500,
            description="Search: action:NAME (or a category: action:packages), actor:LOGIN,"
            " package:OWNER/NAME, created:>=YYYY-MM-DD, created:<YYYY-MM-DD",
        ),
    ] = "",
    after: Annotated[
        str | None,
        Query(max_length=19, pattern=r"^[0-9]+$", description="Cursor from the Link header"),
    ] = None,
    per_page: Annotated[int, Query(ge=1, le=100, description="Results per page (max 100)")] = 30,
) -> Cursor:
    return Cursor(phrase=phrase, after=parse_unsigned(after, 2**63 - 1), per_page=per_page)


Paging = Annotated[Cursor, Depends(cursor)]


async def answer(request: Request, finding: Awaitable[list[Event]], paging: Cursor) -> JSONResponse:
    """A page of entries; a ``Link`` to the next one when this one is full. A search the log
    can't run is a validation error of ``phrase``."""
    try:
        found = await finding
    except InvalidFilter as exc:
        problem = {"loc": ("query", "phrase"), "msg": exc.message, "type": "value_error"}
        raise RequestValidationError([problem]) from None
    headers = {}
    if len(found) == paging.per_page and found[-1].id is not None:
        url = request.url.include_query_params(after=found[-1].id, per_page=paging.per_page)
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse([entry(e) for e in found], headers=headers)


LISTING: dict[str, Any] = {
    "response_model": list[AuditLogEntry],
    "response_model_by_alias": True,
}


@router.get("/orgs/{org}/audit-log", operation_id="orgs/get-audit-log", **LISTING)
async def org_audit_log(
    request: Request, org: str, who: Caller, audit: Audit, paging: Paging
) -> JSONResponse:
    """An organization's audit log (owners and site administrators), newest first."""
    found = audit.for_org(
        who, org, AuditQuery(phrase=paging.phrase), after=paging.after, limit=paging.per_page
    )
    return await answer(request, found, paging)


@router.get("/user/audit-log", operation_id="users/get-audit-log", **LISTING)
async def user_audit_log(
    request: Request, who: Caller, audit: Audit, paging: Paging
) -> JSONResponse:
    """The caller's audit log: what happened in their namespace and what they did."""
    found = audit.for_user(
        who, AuditQuery(phrase=paging.phrase), after=paging.after, limit=paging.per_page
    )
    return await answer(request, found, paging)


@router.get("/admin/audit-log", operation_id="enterprise-admin/get-audit-log", **LISTING)
async def site_audit_log(
    request: Request, who: Caller, audit: Audit, paging: Paging
) -> JSONResponse:
    """Every entry of the site (site administrators), newest first."""
    found = audit.for_site(
        who, AuditQuery(phrase=paging.phrase), after=paging.after, limit=paging.per_page
    )
    return await answer(request, found, paging)
