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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cargobay.auth.access import Access, Action
from cargobay.auth.policy import (
    ACTION_ROLE,
    Role,
    Scope,
    Visibility,
    parse_scopes,
    scope_allows,
    visibility_role,
)
from cargobay.auth.principal import ANONYMOUS, Kind, Principal
from cargobay.auth.ratelimit import FailureLimiter
from cargobay.auth.registry_tokens import GrantedAccess, RegistryClaims, RegistryTokens
from cargobay.auth.secrets import TokenKind, hash_token, same_secret, token_kind
from cargobay.errors import (
    Denied,
    NameInvalid,
    NameUnknown,
    TooManyRequests,
    Unauthenticated,
)
from cargobay.metadata.base import (
    AccountStore,
    PackageAccess,
    PackageAccessStore,
    TokenRecord,
    TokenStore,
)
from cargobay.oci.names import parse_name

_TOUCH_EVERY = 60.0
#: Scopes honoured in one token request.
_MAX_SCOPES = 100


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str


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
    ) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.packages = packages
        self.registry_tokens = registry_tokens
        self.realm = realm
        self.service = registry_tokens.service
        self.limiter = limiter
        self._touched: dict[int, float] = {}

    # -- authentication ---------------------------------------------------------------------

    def challenge(self, access: Access | None, error: str | None = None) -> str:
        value = f'Bearer realm="{self.realm}",service="{self.service}"'
        if access is not None and access.type == "repository":
            value += f',scope="{access.scope}"'
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
        claims = self.registry_tokens.verify(token)
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
        if not scope_allows(principal.scopes, Action.PUSH):
            return False
        namespace = await self.accounts.by_login(name.split("/", 1)[0])
        if namespace is None:
            return False
        if principal.kind is Kind.USER and principal.user_id is not None:
            if principal.site_admin or namespace.id == principal.user_id:
                return True
            return (
                namespace.is_org
                and bool(namespace.package_visibilities)
                and await self.accounts.org_role(namespace.id, principal.user_id) is not None
            )
        if principal.kind is Kind.WORKFLOW and principal.workflow_permission == "write":
            assert principal.workflow_repository_id is not None
            source = await self.accounts.source_repository(principal.workflow_repository_id)
            return source is not None and source.owner_id == namespace.id
        return False

    async def allowed_actions(
        self, principal: Principal, name: str, wanted: Iterable[Action]
    ) -> frozenset[Action]:
        """The subset of ``wanted`` the principal may do on ``name`` (for ``/token``)."""
        package = await self.packages.get(name)
        if package is None:
            creatable = Action.PUSH in wanted and await self.can_create(principal, name)
            return frozenset(a for a in wanted if a in (Action.PUSH, Action.PULL) and creatable)
        role = await self.role(principal, package)
        return frozenset(a for a in wanted if self._allows(principal, role, a, name))

    async def authorize(self, principal: Principal, access: Access) -> None:
        """Allow, or raise Unauthenticated (401), NameUnknown (404, the package is invisible to
        the caller) or Denied (403). A push that may create a package creates it."""
        if access.type != "repository":
            return
        name = access.name
        package = await self.packages.get(name)
        if package is None:
            if Action.PUSH in access.actions and await self.can_create(principal, name):
                if not self._grant_covers(principal, name, access.actions):
                    raise self._insufficient_scope(principal, access)
                await self._create(principal, name)
                return
            raise self._refusal(principal, access, can_read=False)
        role = await self.role(principal, package)
        if all(self._role_allows(principal, role, action) for action in access.actions):
            if self._grant_covers(principal, name, access.actions):
                return
            raise self._insufficient_scope(principal, access)
        can_read = self._allows(principal, role, Action.PULL, name)
        raise self._refusal(principal, access, can_read=can_read)

    def _insufficient_scope(self, principal: Principal, access: Access) -> Exception:
        """The caller may do this, but its registry token doesn't say so: ask for a new one.
        RFC 6750 §3.1: 403 with ``error="insufficient_scope"`` (clients such as the ORAS SDK
        fetch a new token only after a 403); anonymous callers get 401 to sign in."""
        challenge = self.challenge(access, "insufficient_scope")
        grant = principal.registry_grant
        if principal.anonymous or (grant and not grant.mentions("repository", access.name)):
            # A token issued for another repository: sign in anew (401).
            return Unauthenticated("authentication required", challenge=challenge)
        return Denied(
            "the registry token does not grant this access; request a token with this scope",
            {"name": access.name},
            challenge=challenge,
        )

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

    async def _create(self, principal: Principal, name: str) -> None:
        namespace = await self.accounts.by_login(name.split("/", 1)[0])
        assert namespace is not None
        allowed = namespace.package_visibilities if namespace.is_org else frozenset()
        visibility = Visibility.PRIVATE.value
        for candidate in ("private", "internal", "public"):
            if not allowed or candidate in allowed:
                visibility = candidate
                break
        workflow_repository = principal.workflow_repository_id
        await self.packages.create(
            name,
            owner_id=namespace.id,
            visibility=visibility,
            # Inheriting starts when a source repository is linked on the first publish
            # (see PackageService.published), or when an admin turns it on.
            inherit_access=workflow_repository is not None,
            source_repository_id=workflow_repository,
            published_by_repository_id=workflow_repository,
            admin_user_id=principal.user_id,
        )

    async def can_read(self, principal: Principal, name: str) -> bool:
        return Action.PULL in await self.allowed_actions(principal, name, {Action.PULL})

    # -- the token service ----------------------------------------------------------------------

    async def issue_registry_token(
        self, principal: Principal, scopes: Iterable[str]
    ) -> IssuedToken:
        """``/token``: a registry token granting what was asked, as far as it is allowed."""
        granted: list[GrantedAccess] = []
        for scope in list(scopes)[:_MAX_SCOPES]:
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue  # unknown resource types and malformed scopes grant nothing
            try:
                name = parse_name(parts[1])
            except NameInvalid:
                continue
            wanted = {Action(a) for a in parts[-1].split(",") if a in {x.value for x in Action}}
            if "*" in parts[-1].split(","):
                wanted = set(Action)
            actions = await self.allowed_actions(principal, name, wanted)
            granted.append(GrantedAccess("repository", name, frozenset(a.value for a in actions)))
        subject = principal.login if principal.kind is not Kind.ANONYMOUS else ""
        token, issued_at, expires_in = self.registry_tokens.issue(
            subject, granted, principal.token_id
        )
        issued = datetime.fromtimestamp(issued_at, UTC).isoformat().replace("+00:00", "Z")
        return IssuedToken(token, expires_in, issued)


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
