"""Users, organizations, teams, repositories and tokens: GitHub's paths and shapes where GitHub
has them (``/user``, ``/users/{username}``, ``/orgs/{org}``, ``/admin/users``,
``/orgs/{org}/memberships/...``, ``/repos/{owner}/{repo}/collaborators/...``), cargobay's own
for tokens (GitHub has no REST API for classic tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services, urls
from cargobay.api.rest.schemas import MinimalRepository, Organization, SimpleUser, Token
from cargobay.ports.accounts import SourceRepository
from cargobay.services.administration import Administration

router = APIRouter(responses=ERROR_RESPONSES)


def administration(request: Request) -> Administration:
    value: Administration = services(request).administration
    return value


Admin = Annotated[Administration, Depends(administration)]


class NewUser(BaseModel):
    login: str = Field(max_length=39)
    email: str | None = None
    site_admin: bool = False


class NewOrganization(BaseModel):
    login: str = Field(max_length=39)
    admin: str = Field(description="login of the user who becomes its owner")


class OrganizationUpdate(BaseModel):
    package_visibilities: list[Literal["public", "private", "internal"]] | None = Field(
        None, description="visibilities members may create packages with"
    )
    inherit_access_default: bool | None = None


class Membership(BaseModel):
    role: Literal["admin", "member"] = "member"


class NewTeam(BaseModel):
    name: str = Field(max_length=100)


class Team(BaseModel):
    slug: str
    organization: str


class NewRepository(BaseModel):
    name: str = Field(max_length=100)
    private: bool = False


class Permission(BaseModel):
    permission: Literal["pull", "triage", "push", "maintain", "admin"] = "push"


class NewToken(BaseModel):
    scopes: list[Literal["read:packages", "write:packages", "delete:packages"]] = Field(
        min_length=1
    )
    note: str | None = Field(None, max_length=255)
    expires_in: str | None = Field(None, description="lifetime such as 30d, 12h; none: never")


class NewWorkflowToken(BaseModel):
    permission: Literal["read", "write"] = "write"
    expires_in: str | None = Field(None, description="lifetime such as 1h (default: the setting)")


class WorkflowToken(BaseModel):
    token: str
    repository: str
    permission: str
    expires_at: datetime | None


def _repository(request: Request, repository: SourceRepository) -> MinimalRepository:
    u = urls(request)
    return MinimalRepository(
        id=repository.id,
        name=repository.name,
        full_name=repository.full_name,
        private=repository.private,
        owner=u.user(repository.owner, repository.owner_type, id_=repository.owner_id),
        html_url=f"{u.base}/{repository.full_name}",
        url=f"{u.api}/repos/{repository.full_name}",
    )


# -- users and organizations -------------------------------------------------------------------


@router.get(
    "/user", response_model=SimpleUser, tags=["users"], operation_id="users/get-authenticated"
)
async def get_authenticated_user(request: Request, who: Caller, admin: Admin) -> Any:
    return urls(request).account(await admin.me(who))


@router.get(
    "/users/{username}",
    response_model=SimpleUser,
    tags=["users"],
    operation_id="users/get-by-username",
)
async def get_user(request: Request, username: str, who: Caller, admin: Admin) -> Any:
    # As on GitHub, organizations answer here too (``owner.url`` of their packages).
    return urls(request).account(await admin.account(username, None))


@router.post(
    "/admin/users",
    status_code=201,
    response_model=SimpleUser,
    tags=["enterprise-admin"],
    operation_id="enterprise-admin/create-user",
)
async def create_user(request: Request, who: Caller, admin: Admin, body: NewUser) -> Any:
    created = await admin.create_user(who, body.login, body.email, body.site_admin)
    return urls(request).account(created)


@router.put(
    "/users/{username}/suspended",
    status_code=204,
    tags=["enterprise-admin"],
    operation_id="enterprise-admin/suspend-user",
)
async def suspend_user(username: str, who: Caller, admin: Admin) -> Response:
    await admin.set_suspended(who, username, True)
    return Response(status_code=204)


@router.delete(
    "/users/{username}/suspended",
    status_code=204,
    tags=["enterprise-admin"],
    operation_id="enterprise-admin/unsuspend-user",
)
async def unsuspend_user(username: str, who: Caller, admin: Admin) -> Response:
    await admin.set_suspended(who, username, False)
    return Response(status_code=204)


@router.post(
    "/admin/organizations",
    status_code=201,
    response_model=Organization,
    tags=["enterprise-admin"],
    operation_id="enterprise-admin/create-org",
)
async def create_org(request: Request, who: Caller, admin: Admin, body: NewOrganization) -> Any:
    return urls(request).organization(await admin.create_org(who, body.login, body.admin))


@router.get("/orgs/{org}", response_model=Organization, tags=["orgs"], operation_id="orgs/get")
async def get_org(request: Request, org: str, who: Caller, admin: Admin) -> Any:
    return urls(request).organization(await admin.account(org, "Organization"))


@router.patch("/orgs/{org}", response_model=Organization, tags=["orgs"], operation_id="orgs/update")
async def update_org(
    request: Request, org: str, who: Caller, admin: Admin, body: OrganizationUpdate
) -> Any:
    updated = await admin.update_org(
        who,
        org,
        visibilities=list(body.package_visibilities)
        if body.package_visibilities is not None
        else None,
        inherit=body.inherit_access_default,
    )
    return urls(request).organization(updated)


@router.put(
    "/orgs/{org}/memberships/{username}",
    status_code=204,
    tags=["orgs"],
    operation_id="orgs/set-membership-for-user",
)
async def set_membership(
    org: str, username: str, who: Caller, admin: Admin, body: Membership
) -> Response:
    await admin.set_membership(who, org, username, body.role)
    return Response(status_code=204)


@router.post(
    "/orgs/{org}/teams",
    status_code=201,
    response_model=Team,
    tags=["teams"],
    operation_id="teams/create",
)
async def create_team(org: str, who: Caller, admin: Admin, body: NewTeam) -> Any:
    slug = await admin.create_team(who, org, body.name)
    return Team(slug=slug, organization=org.lower())


@router.put(
    "/orgs/{org}/teams/{team_slug}/memberships/{username}",
    status_code=204,
    tags=["teams"],
    operation_id="teams/add-or-update-membership-for-user-in-org",
)
async def add_team_member(
    org: str, team_slug: str, username: str, who: Caller, admin: Admin
) -> Response:
    await admin.add_team_member(who, org, team_slug, username)
    return Response(status_code=204)


@router.put(
    "/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}",
    status_code=204,
    tags=["teams"],
    operation_id="teams/add-or-update-repo-permissions-in-org",
)
async def set_team_repository(
    org: str, team_slug: str, owner: str, repo: str, who: Caller, admin: Admin, body: Permission
) -> Response:
    await admin.set_team_repository(who, org, team_slug, f"{owner}/{repo}", body.permission)
    return Response(status_code=204)


# -- source repositories -----------------------------------------------------------------------


@router.post(
    "/user/repos",
    status_code=201,
    response_model=MinimalRepository,
    tags=["repos"],
    operation_id="repos/create-for-authenticated-user",
)
async def create_user_repository(
    request: Request, who: Caller, admin: Admin, body: NewRepository
) -> Any:
    return _repository(request, await admin.create_repository(who, None, body.name, body.private))


@router.post(
    "/orgs/{org}/repos",
    status_code=201,
    response_model=MinimalRepository,
    tags=["repos"],
    operation_id="repos/create-in-org",
)
async def create_org_repository(
    request: Request, org: str, who: Caller, admin: Admin, body: NewRepository
) -> Any:
    return _repository(request, await admin.create_repository(who, org, body.name, body.private))


@router.get(
    "/repos/{owner}/{repo}",
    response_model=MinimalRepository,
    tags=["repos"],
    operation_id="repos/get",
)
async def get_repository(request: Request, owner: str, repo: str, who: Caller, admin: Admin) -> Any:
    return _repository(request, await admin.repository(who, f"{owner}/{repo}"))


@router.put(
    "/repos/{owner}/{repo}/collaborators/{username}",
    status_code=204,
    tags=["repos"],
    operation_id="repos/add-collaborator",
)
async def add_collaborator(
    owner: str, repo: str, username: str, who: Caller, admin: Admin, body: Permission
) -> Response:
    await admin.set_collaborator(who, f"{owner}/{repo}", username, body.permission)
    return Response(status_code=204)


@router.post(
    "/repos/{owner}/{repo}/workflow-tokens",
    status_code=201,
    response_model=WorkflowToken,
    tags=["tokens"],
    operation_id="tokens/create-workflow-token",
)
async def create_workflow_token(
    owner: str, repo: str, who: Caller, admin: Admin, body: NewWorkflowToken
) -> Any:
    created = await admin.create_workflow_token(
        who, f"{owner}/{repo}", body.permission, body.expires_in
    )
    return WorkflowToken(
        token=created.token,
        repository=f"{owner.lower()}/{repo.lower()}",
        permission=body.permission,
        expires_at=created.record.expires_at,
    )


# -- personal access tokens ----------------------------------------------------------------------


@router.get("/user/tokens", response_model=list[Token], tags=["tokens"], operation_id="tokens/list")
async def list_tokens(request: Request, who: Caller, admin: Admin) -> Any:
    return [urls(request).token(t) for t in await admin.tokens(who)]


@router.post(
    "/user/tokens",
    status_code=201,
    response_model=Token,
    tags=["tokens"],
    operation_id="tokens/create",
)
async def create_token(request: Request, who: Caller, admin: Admin, body: NewToken) -> Any:
    created = await admin.create_token(who, list(body.scopes), body.note, body.expires_in)
    return urls(request).token(created.record, created.token)


@router.delete(
    "/user/tokens/{token_id}", status_code=204, tags=["tokens"], operation_id="tokens/revoke"
)
async def revoke_token(token_id: int, who: Caller, admin: Admin) -> Response:
    await admin.revoke_token(who, token_id)
    return Response(status_code=204)
