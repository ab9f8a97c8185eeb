"""Who makes a request: anonymous, a user (through a personal access token), or a workflow."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cargobay.auth.policy import Scope
from cargobay.auth.registry_tokens import RegistryClaims


class Kind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    WORKFLOW = "workflow"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind = Kind.ANONYMOUS
    user_id: int | None = None
    login: str = ""
    site_admin: bool = False
    #: Scopes of the token used; None means no scope limit (anonymous callers and workflow
    #: tokens are limited by their role alone).
    scopes: frozenset[Scope] | None = None
    token_id: int | None = None
    #: Workflow tokens: the source repository they are bound to, and read|write.
    workflow_repository_id: int | None = None
    workflow_permission: str | None = None
    #: When signed in with a registry token (JWT): what that token grants, at most.
    registry_grant: RegistryClaims | None = None
    #: Signed in to the web pages (a session), or an anonymous visitor of the pages.
    web: bool = False

    @property
    def anonymous(self) -> bool:
        return self.kind is Kind.ANONYMOUS

    @property
    def key(self) -> str:
        """Who this is for per-principal limits: ``user:<id>``, ``workflow:<token id>`` (one
        per workflow run), or ``anonymous``."""
        if self.kind is Kind.USER:
            return f"user:{self.user_id}"
        if self.kind is Kind.WORKFLOW:
            return f"workflow:{self.token_id or self.workflow_repository_id}"
        return "anonymous"


ANONYMOUS = Principal()
