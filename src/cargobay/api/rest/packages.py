"""Packages and versions, as GitHub's REST API has them, for the three scopes: the signed-in
user (``/user``), a user (``/users/{username}``) and an organization (``/orgs/{org}``).
Plus package settings GitHub only has in its web UI: visibility, grants, repository link."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime, and
# they name closures' local dependencies.

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from cargobay.api.rest.dependencies import (
    ERROR_RESPONSES,
    Caller,
    Paging,
    link_header,
    services,
    urls,
)
from cargobay.api.rest.schemas import GrantOut, Package, PackageVersion
from cargobay.auth.principal import Kind
from cargobay.ports.packages import PackageRecord
from cargobay.services.package_core import Forbidden
from cargobay.services.packages import PackageService

router = APIRouter(responses=ERROR_RESPONSES)
TAGS: list[str | Enum] = ["packages"]
SETTINGS_TAGS: list[str | Enum] = ["package settings"]


@dataclass(frozen=True, slots=True)
class Owner:
    login: str
    type: str | None


def service(request: Request) -> PackageService:
    value: PackageService = services(request).packages
    return value


Packages = Annotated[PackageService, Depends(service)]


def signed_in_owner(who: Caller) -> Owner:
    if who.kind is Kind.WORKFLOW:
        raise Forbidden(
            "Resource not accessible by integration: use /orgs/{org} or /users/{username}"
        )
    return Owner(who.login, "User")


LOGIN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$"


def user_owner(username: Annotated[str, Path(pattern=LOGIN)]) -> Owner:
    return Owner(username, "User")


def org_owner(org: Annotated[str, Path(pattern=LOGIN)]) -> Owner:
    return Owner(org, "Organization")


PackageType = Annotated[str, Path(description="Only `container` packages exist here")]
PackageName = Annotated[
    str,
    Path(
        description="The package name; `/` in it URL-encoded as `%2F`",
        max_length=255,
        pattern=r"^[A-Za-z0-9._%/-]+$",
    ),
]
VersionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


#: The name looked up for a package of another type: one no package can have, so the caller
#: gets exactly what a missing package gets (401 without a token, else 404), in that order.
_NO_PACKAGE = "-"


def _name(package_type: str, package_name: str) -> str:
    if package_type not in ("container", "docker"):
        return _NO_PACKAGE
    return package_name.replace("%2F", "/").replace("%2f", "/")


class PackageUpdate(BaseModel):
    visibility: Literal["public", "private", "internal"] | None = None
    inherit_access: bool | None = None


class RoleBody(BaseModel):
    role: Literal["read", "write", "admin"]


class RepositoryLink(BaseModel):
    repository: str


def _list_route(path: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    @router.get(
        path,
        response_model=list[Package],
        operation_id=f"packages/list-packages-for-{scope}",
        tags=TAGS,
        summary=f"List packages of {scope.replace('-', ' ')}",
    )
    async def list_packages(
        request: Request,
        who: Caller,
        packages: Packages,
        paging: Paging,
        owner: Annotated[Owner, Depends(owner_dep)],
        package_type: Annotated[
            Literal["npm", "maven", "rubygems", "docker", "nuget", "container"], Query()
        ],
        visibility: Annotated[Literal["public", "private", "internal"] | None, Query()] = None,
    ) -> Response:
        found: list[PackageRecord] = []
        total = 0
        await packages.check_owner(who, owner.login, owner.type)
        if package_type in ("container", "docker"):  # no other package types are hosted here
            found, total = await packages.list_packages(
                who, owner.login, owner.type, visibility=visibility, page=paging
            )
        body = [urls(request).package(p).model_dump(mode="json") for p in found]
        return JSONResponse(body, headers=link_header(request, paging, total))


def _package_routes(prefix: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    base = prefix + "/packages/{package_type}/{package_name}"
    OwnerDep = Annotated[Owner, Depends(owner_dep)]

    @router.get(
        base, response_model=Package, operation_id=f"packages/get-package-for-{scope}", tags=TAGS
    )
    async def get_package(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Any:
        name = _name(package_type, package_name)
        return urls(request).package(await packages.get(who, owner.login, owner.type, name))

    @router.delete(
        base, status_code=204, operation_id=f"packages/delete-package-for-{scope}", tags=TAGS
    )
    async def delete_package(
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Response:
        await packages.delete(who, owner.login, owner.type, _name(package_type, package_name))
        return Response(status_code=204)

    @router.post(
        base + "/restore",
        status_code=204,
        operation_id=f"packages/restore-package-for-{scope}",
        tags=TAGS,
    )
    async def restore_package(
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Response:
        await packages.restore(who, owner.login, owner.type, _name(package_type, package_name))
        return Response(status_code=204)

    @router.get(
        base + "/versions",
        response_model=list[PackageVersion],
        operation_id=f"packages/get-all-package-versions-for-{scope}",
        tags=TAGS,
    )
    async def list_versions(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        paging: Paging,
        package_type: PackageType,
        package_name: PackageName,
        state: Annotated[Literal["active", "deleted"], Query()] = "active",
    ) -> Response:
        package, found, total = await packages.versions(
            who,
            owner.login,
            owner.type,
            _name(package_type, package_name),
            deleted=state == "deleted",
            page=paging,
        )
        body = [urls(request).version(package, v).model_dump(mode="json") for v in found]
        return JSONResponse(body, headers=link_header(request, paging, total))

    @router.get(
        base + "/versions/{package_version_id}",
        response_model=PackageVersion,
        operation_id=f"packages/get-package-version-for-{scope}",
        tags=TAGS,
    )
    async def get_version(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        package_version_id: VersionId,
    ) -> Any:
        package, version = await packages.version(
            who, owner.login, owner.type, _name(package_type, package_name), package_version_id
        )
        return urls(request).version(package, version)

    @router.delete(
        base + "/versions/{package_version_id}",
        status_code=204,
        operation_id=f"packages/delete-package-version-for-{scope}",
        tags=TAGS,
    )
    async def delete_version(
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        package_version_id: VersionId,
    ) -> Response:
        await packages.delete_version(
            who, owner.login, owner.type, _name(package_type, package_name), package_version_id
        )
        return Response(status_code=204)

    @router.post(
        base + "/versions/{package_version_id}/restore",
        status_code=204,
        operation_id=f"packages/restore-package-version-for-{scope}",
        tags=TAGS,
    )
    async def restore_version(
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        package_version_id: VersionId,
    ) -> Response:
        await packages.restore_version(
            who, owner.login, owner.type, _name(package_type, package_name), package_version_id
        )
        return Response(status_code=204)

    # -- settings (cargobay; GitHub has these in its web UI only) ------------------------------

    @router.patch(
        base,
        response_model=Package,
        operation_id=f"packages/update-package-for-{scope}",
        tags=SETTINGS_TAGS,
    )
    async def update_package(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        body: PackageUpdate,
    ) -> Any:
        package = await packages.update(
            who,
            owner.login,
            owner.type,
            _name(package_type, package_name),
            visibility=body.visibility,
            inherit_access=body.inherit_access,
        )
        return urls(request).package(package)

    @router.get(
        base + "/access",
        response_model=list[GrantOut],
        operation_id=f"packages/list-access-for-{scope}",
        tags=SETTINGS_TAGS,
    )
    async def list_access(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Any:
        grants = await packages.grants(
            who, owner.login, owner.type, _name(package_type, package_name)
        )
        return [urls(request).grant(g) for g in grants]

    for kind, sub, label in (
        ("user", "/access/users/{grantee}", "user"),
        ("team", "/access/teams/{grantee}", "team"),
        ("source_repository", "/access/repositories/{grantee_owner}/{grantee}", "repository"),
    ):
        _grant_routes(base + sub, owner_dep, scope, kind, label)

    @router.put(
        base + "/repository",
        response_model=Package,
        operation_id=f"packages/link-repository-for-{scope}",
        tags=SETTINGS_TAGS,
    )
    async def link_repository(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        body: RepositoryLink,
    ) -> Any:
        package = await packages.link(
            who, owner.login, owner.type, _name(package_type, package_name), body.repository
        )
        return urls(request).package(package)

    @router.delete(
        base + "/repository",
        response_model=Package,
        operation_id=f"packages/unlink-repository-for-{scope}",
        tags=SETTINGS_TAGS,
    )
    async def unlink_repository(
        request: Request,
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Any:
        package = await packages.link(
            who, owner.login, owner.type, _name(package_type, package_name), None
        )
        return urls(request).package(package)


def _grant_routes(
    path: str, owner_dep: Callable[..., Owner], scope: str, kind: str, label: str
) -> None:
    OwnerDep = Annotated[Owner, Depends(owner_dep)]
    GranteeOwner = Annotated[str, Path(description="owner of the repository (Actions access)")]

    if kind == "source_repository":

        @router.put(
            path, status_code=204, operation_id=f"packages/grant-{label}-for-{scope}", tags=TAGS
        )
        async def grant_repository(
            who: Caller,
            packages: Packages,
            owner: OwnerDep,
            package_type: PackageType,
            package_name: PackageName,
            grantee_owner: GranteeOwner,
            grantee: str,
            body: Annotated[RoleBody, Body()],
        ) -> Response:
            await packages.grant(
                who,
                owner.login,
                owner.type,
                _name(package_type, package_name),
                grantee_type=kind,
                grantee=f"{grantee_owner}/{grantee}",
                role=body.role,
            )
            return Response(status_code=204)

        @router.delete(
            path, status_code=204, operation_id=f"packages/revoke-{label}-for-{scope}", tags=TAGS
        )
        async def revoke_repository(
            who: Caller,
            packages: Packages,
            owner: OwnerDep,
            package_type: PackageType,
            package_name: PackageName,
            grantee_owner: GranteeOwner,
            grantee: str,
        ) -> Response:
            await packages.grant(
                who,
                owner.login,
                owner.type,
                _name(package_type, package_name),
                grantee_type=kind,
                grantee=f"{grantee_owner}/{grantee}",
                role=None,
            )
            return Response(status_code=204)

        return

    @router.put(
        path, status_code=204, operation_id=f"packages/grant-{label}-for-{scope}", tags=TAGS
    )
    async def grant(
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        grantee: str,
        body: Annotated[RoleBody, Body()],
    ) -> Response:
        await packages.grant(
            who,
            owner.login,
            owner.type,
            _name(package_type, package_name),
            grantee_type=kind,
            grantee=grantee,
            role=body.role,
        )
        return Response(status_code=204)

    @router.delete(
        path, status_code=204, operation_id=f"packages/revoke-{label}-for-{scope}", tags=TAGS
    )
    async def revoke(
        who: Caller,
        packages: Packages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        grantee: str,
    ) -> Response:
        await packages.grant(
            who,
            owner.login,
            owner.type,
            _name(package_type, package_name),
            grantee_type=kind,
            grantee=grantee,
            role=None,
        )
        return Response(status_code=204)


_list_route("/user/packages", signed_in_owner, "authenticated-user")
_list_route("/users/{username}/packages", user_owner, "user")
_list_route("/orgs/{org}/packages", org_owner, "organization")
_package_routes("/user", signed_in_owner, "authenticated-user")
_package_routes("/users/{username}", user_owner, "user")
_package_routes("/orgs/{org}", org_owner, "org")
