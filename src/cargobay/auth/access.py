"""What a request wants (an :class:`Access`), who asks (a :class:`Principal`), and authorize().

Routes declare the access they need; handlers call :func:`authorize` once before doing anything.
Until accounts exist the policy is open: every principal may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"


_METHOD_ACTIONS: dict[str, frozenset[Action]] = {
    "GET": frozenset({Action.PULL}),
    "HEAD": frozenset({Action.PULL}),
    "POST": frozenset({Action.PULL, Action.PUSH}),
    "PATCH": frozenset({Action.PULL, Action.PUSH}),
    "PUT": frozenset({Action.PULL, Action.PUSH}),
    "DELETE": frozenset({Action.DELETE}),
}


def actions_for_method(method: str) -> frozenset[Action]:
    """The registry actions an HTTP method needs on a repository (docker's token scopes)."""
    return _METHOD_ACTIONS.get(method.upper(), frozenset({Action.PUSH, Action.DELETE}))


@dataclass(frozen=True, slots=True)
class Access:
    """``repository:<name>:<actions>``, or ``registry:catalog:*`` for the catalog."""

    type: str
    name: str
    actions: frozenset[Action]

    @classmethod
    def repository(cls, name: str, method: str) -> Access:
        return cls("repository", name, actions_for_method(method))

    @property
    def scope(self) -> str:
        """The scope string a client asks the token service for."""
        actions = ",".join(sorted(a.value for a in self.actions)) or "*"
        return f"{self.type}:{self.name}:{actions}"


CATALOG = Access("registry", "catalog", frozenset())
