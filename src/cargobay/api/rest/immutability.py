"""Immutable tag rules of a package (cargobay; GitHub has no such setting): read them, and set
them all at once. A tag matching a rule can't be moved to another version or deleted."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime, and
# they name closures' local dependencies.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
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
from cargobay.services.immutability import MAX_RULES, ImmutableTagService

router = APIRouter(responses=ERROR_RESPONSES)


class ImmutableTags(BaseModel):
    """Glob patterns (``*``, ``?``, ``[...]``); tags matching any are immutable."""

    patterns: list[str] = Field(
        max_length=MAX_RULES, examples=[["v*", "release-[0-9]*"]], description=__doc__
    )


def service(request: Request) -> ImmutableTagService:
    value: ImmutableTagService = services(request).immutability
    return value


Rules = Annotated[ImmutableTagService, Depends(service)]


def _routes(prefix: str, owner_dep: Callable[..., Owner], scope: str) -> None:
    path = prefix + "/packages/{package_type}/{package_name}/immutable-tags"
    OwnerDep = Annotated[Owner, Depends(owner_dep)]

    @router.get(
        path,
        response_model=ImmutableTags,
        operation_id=f"packages/get-immutable-tags-for-{scope}",
        tags=SETTINGS_TAGS,
    )
    async def get_immutable_tags(
        who: Caller,
        rules: Rules,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
    ) -> ImmutableTags:
        name = _name(package_type, package_name)
        return ImmutableTags(patterns=await rules.patterns(who, owner.login, owner.type, name))

    @router.put(
        path,
        response_model=ImmutableTags,
        operation_id=f"packages/set-immutable-tags-for-{scope}",
        tags=SETTINGS_TAGS,
        summary="Set the immutable tag rules (package admins; replaces every rule)",
    )
    async def set_immutable_tags(
        who: Caller,
        rules: Rules,
        owner: OwnerDep,
        package_type: PackageType,
        package_name: PackageName,
        body: ImmutableTags,
    ) -> ImmutableTags:
        name = _name(package_type, package_name)
        patterns = await rules.replace(who, owner.login, owner.type, name, body.patterns)
        return ImmutableTags(patterns=patterns)


_routes("/user", signed_in_owner, "authenticated-user")
_routes("/users/{username}", user_owner, "user")
_routes("/orgs/{org}", org_owner, "org")
