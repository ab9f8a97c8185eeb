"""Storage a package uses (cargobay; GitHub shows no such number): anyone who sees the package
sees it."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime, and
# they name closures' local dependencies.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from cargobay.api.rest.app import ERROR_RESPONSES, Caller, state
from cargobay.api.rest.packages import (
    TAGS,
    Owner,
    PackageName,
    PackageType,
    _name,
    org_owner,
    signed_in_owner,
    user_owner,
)
from cargobay.services.usage import UsageService

router = APIRouter(responses=ERROR_RESPONSES)


class PackageUsage(BaseModel):
    stored: int = Field(description="Bytes kept for the package: each blob once, manifests")
    as_pushed: int = Field(
        description="Bytes as pushed: each version's blobs counted for every version"
    )
    blobs: int
    versions: int = Field(description="Versions, deleted ones in their restore window included")


def service(request: Request) -> UsageService:
    value: UsageService = state(request)["usage"]
    return value


Usages = Annotated[UsageService, Depends(service)]


def _routes(prefix: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    OwnerDep = Annotated[Owner, Depends(owner_dep)]

    @router.get(
        prefix + "/packages/{package_type}/{package_name}/usage",
        response_model=PackageUsage,
        operation_id=f"packages/get-usage-for-{scope}",
        tags=TAGS,
    )
    async def get_package_usage(
        who: Caller,
        usages: Usages,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> PackageUsage:
        name = _name(package_type, package_name)
        found = await usages.package(who, owner.login, owner.type, name)
        return PackageUsage(
            stored=found.stored,
            as_pushed=found.as_pushed,
            blobs=found.blobs,
            versions=found.versions,
        )


_routes("/user", signed_in_owner, "authenticated-user")
_routes("/users/{username}", user_owner, "user")
_routes("/orgs/{org}", org_owner, "org")
