"""Trust policies of a source repository (trusted publishing): which CI jobs may exchange their
OIDC ID token at ``/token`` for a workflow token of the repository. Repository admins only.
cargobay's own paths (GitHub has no such API for packages)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services
from cargobay.ports.trust import TrustPolicy
from cargobay.services.trusted_publishing import TrustedPublishing

router = APIRouter(responses=ERROR_RESPONSES, tags=["trusted-publishing"])


class NewTrustPolicy(BaseModel):
    issuer: str = Field(
        max_length=255, description="an issuer URL the operator lists in CARGOBAY_OIDC_ISSUERS"
    )
    audience: str | None = Field(
        None, max_length=255, description="the aud ID tokens must have (default: the base URL)"
    )
    claims: dict[str, str] = Field(
        min_length=1,
        description="claim name -> pattern (exact, or a glob with * ? [...]); all must hold",
        examples=[{"repository": "octo-org/app", "ref": "refs/heads/main"}],
    )


class TrustPolicyOut(BaseModel):
    id: int
    repository: str
    issuer: str
    audience: str = Field(description="the aud ID tokens must have")
    claims: dict[str, str]
    created_at: datetime


def _service(request: Request) -> TrustedPublishing:
    value: TrustedPublishing = services(request).trusted_publishing
    return value


def _out(service: TrustedPublishing, policy: TrustPolicy) -> TrustPolicyOut:
    return TrustPolicyOut(
        id=policy.id,
        repository=policy.repository,
        issuer=policy.issuer,
        audience=policy.audience or service.default_audience,
        claims=dict(policy.claims),
        created_at=policy.created_at,
    )


PolicyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/repos/{owner}/{repo}/trust-policies",
    response_model=list[TrustPolicyOut],
    operation_id="trusted-publishing/list-trust-policies",
)
async def list_policies(request: Request, owner: str, repo: str, who: Caller) -> Any:
    service = _service(request)
    return [_out(service, p) for p in await service.policies_as(who, f"{owner}/{repo}")]


@router.post(
    "/repos/{owner}/{repo}/trust-policies",
    status_code=201,
    response_model=TrustPolicyOut,
    operation_id="trusted-publishing/create-trust-policy",
)
async def create_policy(
    request: Request, owner: str, repo: str, who: Caller, body: NewTrustPolicy
) -> Any:
    service = _service(request)
    policy = await service.add_as(who, f"{owner}/{repo}", body.issuer, body.audience, body.claims)
    return _out(service, policy)


@router.delete(
    "/repos/{owner}/{repo}/trust-policies/{policy_id}",
    status_code=204,
    operation_id="trusted-publishing/delete-trust-policy",
)
async def delete_policy(
    request: Request, owner: str, repo: str, policy_id: PolicyId, who: Caller
) -> Response:
    await _service(request).remove_as(who, f"{owner}/{repo}", policy_id)
    return Response(status_code=204)
