"""Storage a package or a namespace uses (cargobay; GitHub shows no such number): anyone who
sees the package sees its size; a namespace's figures cover the packages the caller sees, and
its quota is shown to those who administer it."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime, and
# they name closures' local dependencies.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services
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


class QuotaStatus(BaseModel):
    used: int = Field(description="Bytes the namespace stores: each blob once, manifests")
    quota: int | None = Field(description="The limit in bytes; null: none")
    warn_percent: int | None = Field(description="The share of the quota that warns; null: none")
    percent_used: float | None


class NamespaceUsage(BaseModel):
    namespace: str
    stored: int = Field(
        description="Bytes of the packages the caller sees, together: each blob once, manifests"
    )
    as_pushed: int = Field(
        description="Bytes as pushed: each version's blobs counted for every version"
    )
    blobs: int
    versions: int
    packages: int = Field(description="Packages counted: those the caller may read")
    quota: QuotaStatus | None = Field(
        description="The namespace's usage counter and quota: for the user, an organization's"
        " owners and site administrators; null for anyone else"
    )


def service(request: Request) -> UsageService:
    value: UsageService = services(request).usage
    return value


Usages = Annotated[UsageService, Depends(service)]


def _routes(prefix: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    OwnerDep = Annotated[Owner, Depends(owner_dep)]

    @router.get(
        prefix + "/packages/usage",
        response_model=NamespaceUsage,
        operation_id=f"packages/get-namespace-usage-for-{scope}",
        tags=TAGS,
    )
    async def get_namespace_usage(who: Caller, usages: Usages, owner: OwnerDep) -> NamespaceUsage:
        found = await usages.namespace(who, owner.login, owner.type)
        quota = None
        if found.quota is not None:
            quota = QuotaStatus(
                used=found.quota.used,
                quota=found.quota.quota,
                warn_percent=found.quota.warn_percent,
                percent_used=found.quota.percent,
            )
        return NamespaceUsage(
            namespace=found.namespace,
            stored=found.usage.stored,
            as_pushed=found.usage.as_pushed,
            blobs=found.usage.blobs,
            versions=found.usage.versions,
            packages=found.packages,
            quota=quota,
        )

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
