"""Accounts (users, organizations, teams, source repositories), tokens, package access and sign-in
sessions: the stores and the frozen values they return."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cargobay.ports.events import Event


@dataclass(frozen=True, slots=True)
class Account:
    """A user (``type`` User) or an organization (``type`` Organization)."""

    id: int
    login: str
    type: str
    email: str | None
    password_hash: str | None
    site_admin: bool
    suspended: bool
    #: Organizations: visibilities members may create packages with.
    package_visibilities: frozenset[str]
    #: Organizations: whether new packages inherit access from their source repository.
    inherit_access_default: bool

    @property
    def is_org(self) -> bool:
        return self.type == "Organization"


@dataclass(frozen=True, slots=True)
class SourceRepository:
    id: int
    owner_id: int
    owner: str
    name: str
    private: bool
    owner_type: str = "User"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    kind: str
    #: SHA-256 of the token (the token itself is never stored).
    token_hash: str
    user_id: int | None
    scopes: tuple[str, ...]
    note: str | None
    source_repository_id: int | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class PackageAccess:
    """What decides who may reach a package."""

    id: int
    name: str
    owner_id: int | None
    visibility: str
    source_repository_id: int | None
    inherit_access: bool
    published_by_repository_id: int | None


@dataclass(frozen=True, slots=True)
class UserPackageFacts:
    """Everything that gives one user a role on one package."""

    #: Roles granted on the package to the user or to teams the user is in.
    grants: tuple[str, ...]
    #: ``owner`` or ``member`` of the organization owning the package, if any.
    org_role: str | None
    #: Roles on the linked source repository (when the package inherits access).
    source_roles: tuple[str, ...]


class AccountStore(Protocol):
    """Users, organizations, teams and source repositories. Logins are stored lower-case."""

    async def by_login(self, login: str) -> Account | None: ...

    async def by_id(self, account_id: int) -> Account | None: ...

    async def org_role(self, org_id: int, user_id: int) -> str | None: ...

    async def source_repository(self, repository_id: int) -> SourceRepository | None: ...

    async def source_repository_by_name(self, owner: str, name: str) -> SourceRepository | None: ...

    async def source_roles(self, repository_id: int, user_id: int) -> tuple[str, ...]: ...

    async def create(
        self,
        login: str,
        type_: str,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        site_admin: bool = False,
    ) -> Account: ...

    async def update(self, account_id: int, **values: Any) -> None: ...

    async def count_users(self) -> int: ...

    async def users(self) -> list[Account]:
        """Every user, by login."""

    async def set_org_member(self, org_id: int, user_id: int, role: str) -> None: ...

    async def create_team(self, org_id: int, slug: str) -> int: ...

    async def team_id(self, org_id: int, slug: str) -> int | None: ...

    async def add_team_member(self, team_id: int, user_id: int) -> None: ...

    async def create_source_repository(self, owner_id: int, name: str, private: bool) -> int: ...

    async def grant_source_repository(
        self, repository_id: int, grantee_type: str, grantee_id: int, role: str
    ) -> None: ...


class TokenStore(Protocol):
    """Token records, found by the SHA-256 of the token; the token itself is never stored."""

    async def by_hash(self, token_hash: str) -> TokenRecord | None: ...

    async def by_id(self, token_id: int) -> TokenRecord | None: ...

    async def create(
        self,
        *,
        kind: str,
        token_hash: str,
        user_id: int | None,
        scopes: Sequence[str],
        note: str | None,
        source_repository_id: int | None,
        expires_at: datetime | None,
        events: Callable[[int], Sequence[Event]] | None = None,
    ) -> TokenRecord:
        """A new token; ``events(token id)`` are appended in the same transaction."""

    async def for_user(self, user_id: int) -> list[TokenRecord]: ...

    async def revoke(self, token_id: int, events: Sequence[Event] = ()) -> bool: ...

    async def touch(self, token_id: int) -> None: ...


class PackageAccessStore(Protocol):
    async def get(self, name: str) -> PackageAccess | None: ...

    async def user_facts(self, package: PackageAccess, user_id: int) -> UserPackageFacts: ...

    async def actions_grant(self, package_id: int, repository_id: int) -> str | None: ...

    async def create(
        self,
        name: str,
        *,
        owner_id: int,
        visibility: str,
        inherit_access: bool,
        source_repository_id: int | None,
        published_by_repository_id: int | None,
        admin_user_id: int | None,
    ) -> PackageAccess:
        """Create the package if it does not exist yet (concurrent first pushes: one wins)."""


class SessionStore(Protocol):
    """Web sign-in sessions, found by the SHA-256 of the cookie's secret."""

    async def create(self, id_hash: str, user_id: int, csrf: str, expires_at: datetime) -> None: ...

    async def get(self, id_hash: str) -> tuple[int, str, datetime] | None:
        """``(user_id, csrf, expires_at)`` of the session, or None."""

    async def delete(self, id_hash: str) -> None: ...

    async def delete_expired(self) -> None: ...

    async def delete_for_user(self, user_id: int) -> int:
        """End every session of the user; returns how many there were."""
