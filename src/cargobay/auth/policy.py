"""Roles, token scopes and what each registry action needs. Pure functions, no I/O.

Roles are ordered: none < read < write < admin. A principal's role on a package is the highest
of everything that grants one; its token's scopes then cap what that role may be used for.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum

from cargobay.auth.access import Action


class Role(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        return {"read": cls.READ, "write": cls.WRITE, "admin": cls.ADMIN}[value]

    @property
    def label(self) -> str:
        return self.name.lower()


class Scope(StrEnum):
    READ_PACKAGES = "read:packages"
    WRITE_PACKAGES = "write:packages"
    DELETE_PACKAGES = "delete:packages"


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PRIVATE = "private"


#: The role each registry action needs on the package.
ACTION_ROLE: dict[Action, Role] = {
    Action.PULL: Role.READ,
    Action.PUSH: Role.WRITE,
    Action.DELETE: Role.ADMIN,
}


def parse_scopes(value: str | Iterable[str]) -> frozenset[Scope]:
    """Scopes from ``a,b`` or a list. Raises ValueError for an unknown scope."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(Scope(item.strip()) for item in items if item.strip())


def scope_allows(scopes: frozenset[Scope] | None, action: Action) -> bool:
    """Whether token scopes permit ``action`` (None: no scope limit, e.g. a workflow token)."""
    if scopes is None:
        return True
    if action is Action.PULL:
        return bool(scopes & {Scope.READ_PACKAGES, Scope.WRITE_PACKAGES})
    if action is Action.PUSH:
        return Scope.WRITE_PACKAGES in scopes
    return Scope.DELETE_PACKAGES in scopes


def visibility_role(visibility: str, *, signed_in: bool) -> Role:
    """The role a package's visibility alone gives: public to all, internal to signed-in users."""
    if visibility == Visibility.PUBLIC:
        return Role.READ
    if visibility == Visibility.INTERNAL and signed_in:
        return Role.READ
    return Role.NONE
