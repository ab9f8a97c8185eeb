"""``/token``'s decision: which of the asked-for scopes a registry token grants.

The grant is the intersection of what was asked and what the caller may do
(:meth:`AccessService.allowed_actions`, least privilege as in Docker's token specification);
asking for more is not an error. The rules are in ``docs/permissions.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cargobay.auth.access import Action
from cargobay.auth.principal import Kind, Principal
from cargobay.auth.registry_tokens import GrantedAccess
from cargobay.errors import NameInvalid
from cargobay.oci.names import parse_name
from cargobay.services.access import AccessService

#: Scopes honoured in one token request.
_MAX_SCOPES = 100
_ACTIONS = {a.value for a in Action}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str


async def issue_registry_token(
    access: AccessService, principal: Principal, scopes: Iterable[str]
) -> IssuedToken:
    """A registry token granting what was asked, as far as it is allowed."""
    granted: list[GrantedAccess] = []
    for scope in list(scopes)[:_MAX_SCOPES]:
        parts = scope.split(":")
        if len(parts) != 3 or parts[0] != "repository":
            continue  # unknown resource types and malformed scopes grant nothing
        try:
            name = parse_name(parts[1])
        except NameInvalid:
            continue
        asked = parts[-1].split(",")
        wanted = set(Action) if "*" in asked else {Action(a) for a in asked if a in _ACTIONS}
        actions = await access.allowed_actions(principal, name, wanted)
        granted.append(GrantedAccess("repository", name, frozenset(a.value for a in actions)))
    subject = principal.login if principal.kind is not Kind.ANONYMOUS else ""
    token, issued_at, expires_in = access.registry_tokens.issue(
        subject, granted, principal.token_id
    )
    issued = datetime.fromtimestamp(issued_at, UTC).isoformat().replace("+00:00", "Z")
    return IssuedToken(token, expires_in, issued)
