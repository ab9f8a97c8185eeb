"""Retention policies (cargobay; GitHub has no such setting): a package's own, the default of a
user or organization, a dry run listing exactly what the cleanup would remove, and a run now."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime, and
# they name closures' local dependencies.

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services
from cargobay.api.rest.packages import (
    SETTINGS_TAGS,
    Owner,
    PackageName,
    PackageType,
    _name,
    org_owner,
    signed_in_owner,
    user_owner,
)
from cargobay.ports.retention import Removal, RetentionPolicy
from cargobay.services.retention import Effective, RetentionService
from cargobay.services.retention_rules import MAX_DAYS, MAX_PATTERN_LENGTH, MAX_PATTERNS, MAX_TAGS

router = APIRouter(responses=ERROR_RESPONSES)


class Policy(BaseModel):
    """What the cleanup removes; a rule left out (null) is off."""

    untagged_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS,
        description="Remove untagged versions last pushed more than this many days ago",
    )
    keep_tags: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TAGS,
        description="Keep this many most recent tags; versions none of whose tags is kept go",
    )
    tag_patterns: list[Annotated[str, Field(max_length=MAX_PATTERN_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        examples=[["v*", "re:^release-[0-9]+$"]],
        description="Keep tags matching these: globs, or RE2 regular expressions after `re:`",
    )
    pulled_days: int | None = Field(
        default=None, ge=1, le=MAX_DAYS, description="Keep versions pulled within this many days"
    )

    @classmethod
    def of(cls, policy: RetentionPolicy) -> "Policy":
        return cls(
            untagged_days=policy.untagged_days,
            keep_tags=policy.keep_tags,
            tag_patterns=list(policy.tag_patterns),
            pulled_days=policy.pulled_days,
        )

    def value(self) -> RetentionPolicy:
        return RetentionPolicy(
            untagged_days=self.untagged_days,
            keep_tags=self.keep_tags,
            tag_patterns=tuple(self.tag_patterns),
            pulled_days=self.pulled_days,
        )


class PackagePolicy(BaseModel):
    policy: Policy | None = Field(description="The policy the package follows (null: none)")
    source: Literal["package", "owner", "none"] = Field(
        description="Its own policy, its owner's default, or none"
    )

    @classmethod
    def of(cls, found: Effective) -> "PackagePolicy":
        policy = Policy.of(found.policy) if found.policy else None
        return cls(policy=policy, source=found.source)  # type: ignore[arg-type]


class RemovedVersion(BaseModel):
    id: int
    name: str = Field(description="The version's digest")
    kind: str
    tags: list[str] = Field(description="Its tags (restored with it if still free)")
    pushed_at: datetime
    reason: str

    @classmethod
    def of(cls, removal: Removal) -> "RemovedVersion":
        return cls(
            id=removal.id,
            name=removal.digest,
            kind=removal.kind,
            tags=list(removal.tags),
            pushed_at=removal.pushed_at,
            reason=removal.reason,
        )


class Cleanup(BaseModel):
    dry_run: bool
    versions: list[RemovedVersion]


def service(request: Request) -> RetentionService:
    value: RetentionService = services(request).retention
    return value


Retention = Annotated[RetentionService, Depends(service)]


def _package_routes(prefix: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    path = prefix + "/packages/{package_type}/{package_name}/retention"
    OwnerDep = Annotated[Owner, Depends(owner_dep)]

    @router.get(
        path,
        response_model=PackagePolicy,
        operation_id=f"packages/get-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="The retention policy a package follows (its own or its owner's)",
    )
    async def get_retention(
        who: Caller,
        retention: Retention,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> PackagePolicy:
        name = _name(package_type, package_name)
        return PackagePolicy.of(await retention.package_policy(who, owner.login, owner.type, name))

    @router.put(
        path,
        response_model=PackagePolicy,
        operation_id=f"packages/set-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Give a package a retention policy of its own (package admins)",
    )
    async def set_retention(
        who: Caller,
        retention: Retention,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        body: Policy,
    ) -> PackagePolicy:
        name = _name(package_type, package_name)
        found = await retention.set_package_policy(who, owner.login, owner.type, name, body.value())
        return PackagePolicy.of(found)

    @router.delete(
        path,
        response_model=PackagePolicy,
        operation_id=f"packages/delete-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Drop a package's own policy: it follows its owner's default again",
    )
    async def delete_retention(
        who: Caller,
        retention: Retention,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> PackagePolicy:
        name = _name(package_type, package_name)
        return PackagePolicy.of(
            await retention.clear_package_policy(who, owner.login, owner.type, name)
        )

    @router.get(
        path + "/preview",
        response_model=Cleanup,
        operation_id=f"packages/preview-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Dry run: exactly the versions the cleanup would remove now (package admins)",
    )
    async def preview_retention(
        who: Caller,
        retention: Retention,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Cleanup:
        name = _name(package_type, package_name)
        found = await retention.preview(who, owner.login, owner.type, name)
        return Cleanup(dry_run=True, versions=[RemovedVersion.of(r) for r in found])

    @router.post(
        path + "/apply",
        response_model=Cleanup,
        operation_id=f"packages/apply-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Run the cleanup now; what it removes is restorable for the restore window",
    )
    async def apply_retention(
        who: Caller,
        retention: Retention,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> Cleanup:
        name = _name(package_type, package_name)
        found = await retention.apply(who, owner.login, owner.type, name)
        return Cleanup(dry_run=False, versions=[RemovedVersion.of(r) for r in found])


def _owner_routes(prefix: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    path = prefix + "/packages/retention"
    OwnerDep = Annotated[Owner, Depends(owner_dep)]

    @router.get(
        path,
        response_model=Policy | None,
        operation_id=f"packages/get-default-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="The default retention policy of the packages (the user, organization owners)",
    )
    async def get_default_retention(
        who: Caller, retention: Retention, owner: OwnerDep
    ) -> Policy | None:
        found = await retention.owner_policy(who, owner.login, owner.type)
        return Policy.of(found) if found else None

    @router.put(
        path,
        response_model=Policy,
        operation_id=f"packages/set-default-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Set the default retention policy of packages without one of their own",
    )
    async def set_default_retention(
        who: Caller, retention: Retention, owner: OwnerDep, body: Policy
    ) -> Policy:
        return Policy.of(
            await retention.set_owner_policy(who, owner.login, owner.type, body.value())
        )

    @router.delete(
        path,
        status_code=204,
        response_class=Response,
        operation_id=f"packages/delete-default-retention-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Drop the default retention policy",
    )
    async def delete_default_retention(
        who: Caller, retention: Retention, owner: OwnerDep
    ) -> Response:
        await retention.clear_owner_policy(who, owner.login, owner.type)
        return Response(status_code=204)


for _prefix, _dep, _scope in (
    ("/user", signed_in_owner, "authenticated-user"),
    ("/users/{username}", user_owner, "user"),
    ("/orgs/{org}", org_owner, "org"),
):
    _package_routes(_prefix, _dep, _scope)
    _owner_routes(_prefix, _dep, _scope)
