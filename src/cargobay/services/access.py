"""Authentication and authorization: who is asking, and may they do this to that package.

The one decision point of the registry: handlers call :meth:`AccessService.authorize` with the
:class:`~cargobay.auth.access.Access` their route declares. The rules are in
``docs/permissions.md``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from cargobay.auth.access import Access, Action
from cargobay.auth.policy import (
    ACTION_ROLE,
    Role,
    Scope,
    parse_scopes,
    scope_allows,
    visibility_role,
)
from cargobay.auth.principal import ANONYMOUS, Kind, Principal
from cargobay.auth.ratelimit import FailureLimiter
from cargobay.auth.registry_tokens import RegistryClaims, RegistryTokens
from cargobay.auth.scope_refusals import ScopeRefusals
from cargobay.auth.secrets import TokenKind, hash_token, same_secret, token_kind
from cargobay.errors import (
    Denied,
    NameUnknown,
    TokenExpired,
    TooManyRequests,
    Unauthenticated,
)
from cargobay.ports.accounts import (
    AccountStore,
    PackageAccess,
    PackageAccessStore,
    TokenRecord,
    TokenStore,
)
from cargobay.services.package_creation import PackageCreation

_TOUCH_EVERY = 60.0
#: How long an expired registry token's refusal is remembered (for its client's repeat).
_REMEMBER_EXPIRED = 300.0


class AccessService:
    def __init__(
        self,
        accounts: AccountStore,
        tokens: TokenStore,
        packages: PackageAccessStore,
        registry_tokens: RegistryTokens,
        *,
        realm: str,
        limiter: FailureLimiter,
        on_failure: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.packages = packages
        self.registry_tokens = registry_tokens
        self.realm = realm
        self.service = registry_tokens.service
        self.limiter = limiter
        self.refusals = ScopeRefusals()
        self.creation = PackageCreation(accounts, packages)
        #: Told of each failed sign-in below the limit: ``(user name, client address)``.
        self.on_failure = on_failure
        self._touched: dict[int, float] = {}

    # -- authentication ---------------------------------------------------------------------

    def challenge(
        self, access: Access | None, error: str | None = None, *, also: Access | None = None
    ) -> str:
        value = f'Bearer realm="{self.realm}",service="{self.service}"'
        scopes = [a.scope for a in (access, also) if a is not None and a.type == "repository"]
        if scopes:
            value += f',scope="{" ".join(scopes)}"'
        if error:
            value += f',error="{error}"'
        return value

    def _unauthenticated(self, message: str, access: Access | None = None) -> Unauthenticated:
        return Unauthenticated(message, challenge=self.challenge(access))

    async def authenticate(self, authorization: str | None, client: str = "") -> Principal:
        """The principal an ``Authorization`` header names (anonymous when there is none)."""
        if not authorization:
            return ANONYMOUS
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and credentials:
            if token_kind(credentials) is not None:
                return await self.from_secret("", credentials, client)
            return await self._from_registry_token(credentials)
        if scheme == "basic" and credentials:
            username, secret = self._decode_basic(credentials)
            return await self.from_secret(username, secret, client)
        raise self._unauthenticated("malformed Authorization header")

    def _decode_basic(self, credentials: str) -> tuple[str, str]:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise self._unauthenticated("malformed Basic credentials") from None
        username, sep, secret = decoded.partition(":")
        if not sep:
            raise self._unauthenticated("malformed Basic credentials")
        return username, secret

    async def from_secret(self, username: str, secret: str, client: str = "") -> Principal:
        """Sign in with a personal access token or workflow token (never a password).

        A valid token always works; failures are counted per client address and user name,
        and past the limit further failures get TooManyRequests instead of Unauthenticated
        (so nobody can lock a user out by failing on purpose).
        """
        kind = token_kind(secret)
        token_hash = hash_token(secret)
        record = await self.tokens.by_hash(token_hash) if kind else None
        if record is not None and not same_secret(record.token_hash, token_hash):
            record = None
        principal = await self._principal_for(record) if record else None
        if principal is None:
            keys = (f"client:{client}", f"user:{username.lower()}")
            await self.limiter.fail(*keys)
            if await self.limiter.blocked(*keys):
                raise TooManyRequests("too many failed sign-ins; try again in a few minutes")
            if self.on_failure is not None:
                await self.on_failure(username, client)
            hint = "" if kind else "; passwords do not work here: use a personal access token"
            raise self._unauthenticated(f"invalid username or token{hint}")
        await self._touch(principal.token_id)
        return principal

    async def _principal_for(self, record: TokenRecord) -> Principal | None:
        now = datetime.now(UTC)
        if record.revoked_at is not None or (record.expires_at and record.expires_at <= now):
            return None
        if record.kind == TokenKind.WORKFLOW:
            if record.source_repository_id is None:
                return None
            permission = "write" if "write:packages" in record.scopes else "read"
            return Principal(
                kind=Kind.WORKFLOW,
                login="workflow",
                scopes=None,
                token_id=record.id,
                workflow_repository_id=record.source_repository_id,
                workflow_permission=permission,
            )
        if record.user_id is None:
            return None
        user = await self.accounts.by_id(record.user_id)
        if user is None or user.suspended:
            return None
        return Principal(
            kind=Kind.USER,
            user_id=user.id,
            login=user.login,
            site_admin=user.site_admin,
            scopes=_scopes(record.scopes),
            token_id=record.id,
        )

    async def _from_registry_token(self, token: str) -> Principal:
        try:
            claims = self.registry_tokens.verify(token)
        except Unauthenticated as exc:
            # RFC 6750 §3.1: a bad or expired token is "invalid_token"; clients fetch another.
            exc.challenge = self.challenge(None, "invalid_token")
            raise
        if claims.token_id is None:
            return Principal(registry_grant=claims)
        record = await self.tokens.by_id(claims.token_id)
        principal = await self._principal_for(record) if record else None
        if principal is None:
            raise self._unauthenticated("the token behind this registry token is no longer valid")
        return _with_grant(principal, claims)

    async def _touch(self, token_id: int | None) -> None:
        if token_id is None:
            return
        now = time.monotonic()
        if now - self._touched.get(token_id, -_TOUCH_EVERY) >= _TOUCH_EVERY:
            self._touched[token_id] = now
            await self.tokens.touch(token_id)

    # -- roles --------------------------------------------------------------------------------

    async def role(self, principal: Principal, package: PackageAccess) -> Role:
        """The principal's role on ``package`` (before token scopes)."""
        role = visibility_role(package.visibility, signed_in=not principal.anonymous)
        if principal.kind is Kind.WORKFLOW:
            return max(role, await self._workflow_role(principal, package))
        if principal.kind is not Kind.USER or principal.user_id is None:
            return role
        user_id = principal.user_id
        if principal.site_admin or package.owner_id == user_id:
            return Role.ADMIN
        facts = await self.packages.user_facts(package, user_id)
        if facts.org_role == "owner":
            return Role.ADMIN
        role = max([role, *(Role.parse(g) for g in facts.grants)])
        if package.inherit_access and package.source_repository_id is not None:
            source = await self.accounts.source_repository(package.source_repository_id)
            if source is not None:
                if source.owner_id == user_id:
                    return Role.ADMIN
                if await self.accounts.org_role(source.owner_id, user_id) == "owner":
                    return Role.ADMIN
                role = max([role, *(Role.parse(r) for r in facts.source_roles)])
        return role

    async def _workflow_role(self, principal: Principal, package: PackageAccess) -> Role:
        repository = principal.workflow_repository_id
        if repository is None:
            return Role.NONE
        if package.published_by_repository_id == repository:
            role = Role.ADMIN
        elif package.source_repository_id == repository:
            role = Role.WRITE
        else:
            granted = await self.packages.actions_grant(package.id, repository)
            role = Role.parse(granted) if granted else Role.NONE
        return min(role, Role.READ) if principal.workflow_permission == "read" else role

    def _allows(self, principal: Principal, role: Role, action: Action, name: str) -> bool:
        return self._role_allows(principal, role, action) and self._grant_covers(
            principal, name, frozenset({action})
        )

    @staticmethod
    def _role_allows(principal: Principal, role: Role, action: Action) -> bool:
        return role >= ACTION_ROLE[action] and scope_allows(principal.scopes, action)

    async def can_create(self, principal: Principal, name: str) -> bool:
        """Whether a push may create the package ``name`` (namespace rules)."""
        return await self.creation.allowed(principal, name)

    async def allowed_actions(
        self, principal: Principal, name: str, wanted: Iterable[Action]
    ) -> frozenset[Action]:
        """The subset of ``wanted`` the principal may do on ``name`` (for ``/token``).

        A package the caller may not see, or one that does not exist yet, grants what the
        caller would have as its creator (pull, push and delete, as far as the caller's scopes
        allow) if the caller may create packages there, else nothing. So a token asked for
        before the first push keeps working after it, and the answer is the same whether the
        name is free or taken by a package the caller can't see. The grant only caps the
        caller's role, which every request checks again: it never lets anyone do more.
        """
        package = await self.packages.get(name)
        if package is not None:
            role = await self.role(principal, package)
            if role >= Role.READ:
                return frozenset(a for a in wanted if self._allows(principal, role, a, name))
        if await self.can_create(principal, name):
            return frozenset(a for a in wanted if scope_allows(principal.scopes, a))
        return frozenset()

    async def authorize(self, principal: Principal, access: Access, request: str = "") -> None:
        """Allow, or raise Unauthenticated (401), NameUnknown (404, the package is invisible to
        the caller) or Denied (403). A push that may create a package creates it. ``request``
        (method and path) tells a client's repeat of a refused request from another one."""
        if access.type != "repository":
            return
        name = access.name
        package = await self.packages.get(name)
        if package is None:
            if Action.PUSH in access.actions and await self.can_create(principal, name):
                if not self._grant_covers(principal, name, access.actions):
                    raise self._insufficient_scope(principal, access, request)
                await self.creation.create(principal, name)
                return
            raise self._refusal(principal, access, can_read=False)
        role = await self.role(principal, package)
        if all(self._role_allows(principal, role, action) for action in access.actions):
            if self._grant_covers(principal, name, access.actions):
                return
            raise self._insufficient_scope(principal, access, request)
        can_read = self._allows(principal, role, Action.PULL, name)
        raise self._refusal(principal, access, can_read=can_read)

    def _insufficient_scope(
        self, principal: Principal, access: Access, request: str, also: Access | None = None
    ) -> Exception:
        """The caller may do this, but its registry token doesn't say so: ask for a new one.

        The challenge carries ``error="insufficient_scope"`` and the scope to ask for. The
        first time a token is refused a scope the answer is 401 (Docker, containerd,
        containers/image, Distribution's client and the conformance suite fetch a new token
        after a 401, and only then); the same token sent again with the same request gets 403
        (the ORAS Python SDK sends the refused token once more, and fetches a new one only
        after a 403). See ``docs/permissions.md``."""
        challenge = self.challenge(access, "insufficient_scope", also=also)
        grant = principal.registry_grant
        scope = " ".join(a.scope for a in (access, also) if a is not None)
        message = "the registry token does not grant this access; request a token with this scope"
        refused = f"{scope} {request}"
        if grant is not None and self.refusals.repeated(grant.token, refused, grant.expires_at):
            return Denied(message, {"name": access.name}, challenge=challenge)
        return Unauthenticated(message, challenge=challenge)

    def token_expired(self, exc: TokenExpired, access: Access, request: str) -> Exception:
        """``request`` for ``access`` with an expired registry token: fetch a new one. 401 with
        ``error="invalid_token"`` and the scope, and 403 if the same token comes back with the
        same request (the ORAS Python SDK sends it once more and fetches a new one only after
        a 403)."""
        challenge = self.challenge(access, "invalid_token")
        if self.refusals.repeated(exc.token, request, time.time() + _REMEMBER_EXPIRED):
            return Denied(exc.message, {"name": access.name}, challenge=challenge)
        return Unauthenticated(exc.message, challenge=challenge)

    def _grant_covers(self, principal: Principal, name: str, actions: frozenset[Action]) -> bool:
        grant = principal.registry_grant
        return grant is None or all(
            a.value in grant.actions_for("repository", name) for a in actions
        )

    def _refusal(self, principal: Principal, access: Access, *, can_read: bool) -> Exception:
        if principal.anonymous and principal.registry_grant is None:
            return self._unauthenticated("authentication required", access)
        if principal.anonymous:
            return Unauthenticated(
                "authentication required", challenge=self.challenge(access, "insufficient_scope")
            )
        if Action.PUSH in access.actions:
            return Denied("requested access to the resource is denied", {"name": access.name})
        if not can_read:
            return NameUnknown(detail={"name": access.name})
        return Denied("requested access to the resource is denied", {"name": access.name})

    async def can_read(self, principal: Principal, name: str) -> bool:
        """Whether the caller may pull from ``name`` now (role, scopes and registry token)."""
        package = await self.packages.get(name)
        if package is None:
            return False
        return self._allows(principal, await self.role(principal, package), Action.PULL, name)

    async def may_mount_from(
        self, principal: Principal, source: str, target: Access, request: str = ""
    ) -> bool:
        """Whether a cross-repository mount into ``target`` may read blobs of ``source``.

        False (the caller uploads instead) when the caller can't read ``source``, exactly as
        when it does not exist. When the caller can but its registry token was not issued for
        it, the token needs widening: Unauthenticated/Denied with a challenge for both scopes.
        """
        package = await self.packages.get(source)
        if package is None:
            return False
        role = await self.role(principal, package)
        if not self._role_allows(principal, role, Action.PULL):
            return False
        pull = frozenset({Action.PULL})
        if not self._grant_covers(principal, source, pull):
            also = Access("repository", source, pull)
            raise self._insufficient_scope(principal, target, request, also)
        return True


@functools.lru_cache(maxsize=64)
def _scopes(scopes: tuple[str, ...]) -> frozenset[Scope]:
    return parse_scopes(scopes)


def _with_grant(principal: Principal, claims: RegistryClaims) -> Principal:
    return Principal(
        kind=principal.kind,
        user_id=principal.user_id,
        login=principal.login,
        site_admin=principal.site_admin,
        scopes=principal.scopes,
        token_id=principal.token_id,
        workflow_repository_id=principal.workflow_repository_id,
        workflow_permission=principal.workflow_permission,
        registry_grant=claims,
    )
