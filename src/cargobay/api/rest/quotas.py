"""Namespaces' storage quotas, for site administrators (cargobay; in the shape of GitHub
Enterprise's ``/admin/...`` endpoints): read, set and remove a user's or an organization's."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services
from cargobay.api.rest.packages import LOGIN
from cargobay.services.accounts import InvalidInput
from cargobay.services.quotas import QuotaService, QuotaView, parse_size

router = APIRouter(responses=ERROR_RESPONSES)
TAGS: list[str | Enum] = ["enterprise-admin"]
PATH = "/admin/namespaces/{owner}/quota"


class Quota(BaseModel):
    namespace: str
    used: int = Field(description="Bytes the namespace stores: each blob once, manifests")
    quota: int | None = Field(description="The limit in bytes; null: none")
    warn_percent: int | None = Field(description="The share of the quota that warns; null: none")
    percent_used: float | None


class QuotaUpdate(BaseModel):
    quota: int | str = Field(
        description="The limit: bytes, or a size such as `10GB` or `500MiB`",
        examples=[10_000_000_000, "10GB"],
    )
    warn_percent: int | None = Field(
        default=None, ge=1, le=100, description="Warn once this share of the quota is used"
    )


def service(request: Request) -> QuotaService:
    value: QuotaService = services(request).quotas
    return value


Quotas = Annotated[QuotaService, Depends(service)]
OwnerLogin = Annotated[str, Path(pattern=LOGIN, description="A user or an organization")]


def _quota(view: QuotaView) -> Quota:
    return Quota(
        namespace=view.namespace,
        used=view.used,
        quota=view.quota,
        warn_percent=view.warn_percent,
        percent_used=view.percent,
    )


@router.get(PATH, response_model=Quota, tags=TAGS, operation_id="enterprise-admin/get-quota")
async def get_quota(who: Caller, quotas: Quotas, owner: OwnerLogin) -> Quota:
    return _quota(await quotas.admin_show(who, owner))


@router.put(PATH, response_model=Quota, tags=TAGS, operation_id="enterprise-admin/set-quota")
async def set_quota(who: Caller, quotas: Quotas, owner: OwnerLogin, body: QuotaUpdate) -> Quota:
    if isinstance(body.quota, int):
        size = body.quota
    else:
        try:
            size = parse_size(body.quota)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    return _quota(await quotas.admin_set(who, owner, size, body.warn_percent))


@router.delete(PATH, response_model=Quota, tags=TAGS, operation_id="enterprise-admin/remove-quota")
async def remove_quota(who: Caller, quotas: Quotas, owner: OwnerLogin) -> Quota:
    return _quota(await quotas.admin_clear(who, owner))
