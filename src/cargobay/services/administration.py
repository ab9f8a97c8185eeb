"""Account administration on behalf of a signed-in caller (the REST API and the pages): the
operator use cases of :class:`~cargobay.services.accounts.AccountService`, each with the check
of who may do it. Writes need a token with ``write:packages``; a token never creates a token
with more scopes than its own."""

from __future__ import annotations

from cargobay.auth.policy import Role, Scope
from cargobay.auth.principal import Kind, Principal
from cargobay.errors import NotFound, Unauthenticated
from cargobay.ports.accounts import Account, SourceRepository, TokenRecord
from cargobay.services.accounts import AccountService, InvalidInput, NewToken
from cargobay.services.package_core import Forbidden, ScopeMissing

#: GitHub's repository permissions, as the roles cargobay has.
REPOSITORY_PERMISSIONS = {
    "pull": "read",
    "triage": "read",
    "read": "read",
    "push": "write",
    "maintain": "write",
    "write": "write",
    "admin": "admin",
}


class Administration:
    def __init__(self, accounts: AccountService) -> None:
        self.service = accounts
        self.accounts = accounts.accounts

    # -- checks ---------------------------------------------------------------------------------

    @staticmethod
    def _user(principal: Principal) -> int:
        if principal.anonymous:
            raise Unauthenticated("Requires authentication")
        if principal.kind is not Kind.USER or principal.user_id is None:
            raise Forbidden("Resource not accessible by integration")
        return principal.user_id

    def _writer(self, principal: Principal) -> int:
        user_id = self._user(principal)
        if principal.scopes is not None and Scope.WRITE_PACKAGES not in principal.scopes:
            raise ScopeMissing((Scope.WRITE_PACKAGES,), principal.scopes)
        return user_id

    def _site_admin(self, principal: Principal) -> None:
        self._writer(principal)
        if not principal.site_admin:
            raise Forbidden("Must be a site administrator.")

    async def _org_owner(self, principal: Principal, org_login: str) -> Account:
        user_id = self._writer(principal)
        org = await self.service.account(org_login, type_="Organization")
        if principal.site_admin:
            return org
        role = await self.accounts.org_role(org.id, user_id)
        if role is None:
            raise NotFound(f"no organization named {org_login!r}")
        if role != "owner":
            raise Forbidden("You must be an owner of the organization.")
        return org

    async def repository_role(self, principal: Principal, repository: SourceRepository) -> Role:
        if principal.user_id is None:
            return Role.NONE if repository.private else Role.READ
        if principal.site_admin or repository.owner_id == principal.user_id:
            return Role.ADMIN
        if await self.accounts.org_role(repository.owner_id, principal.user_id) == "owner":
            return Role.ADMIN
        roles = await self.accounts.source_roles(repository.id, principal.user_id)
        role = max([Role.NONE, *(Role.parse(r) for r in roles)])
        if role == Role.NONE and not repository.private:
            return Role.READ
        return role

    async def _repository_admin(self, principal: Principal, full_name: str) -> SourceRepository:
        self._writer(principal)
        repository = await self.service.source_repository(full_name)
        role = await self.repository_role(principal, repository)
        if role == Role.NONE:
            raise NotFound(f"no repository named {full_name!r}")
        if role < Role.ADMIN:
            raise Forbidden("You need admin access to the repository.")
        return repository

    async def repository_admin(self, principal: Principal, full_name: str) -> SourceRepository:
        """The repository, if the caller administers it (else NotFound or Forbidden)."""
        return await self._repository_admin(principal, full_name)

    # -- users and organizations ----------------------------------------------------------------

    async def me(self, principal: Principal) -> Account:
        user_id = self._user(principal)
        account = await self.accounts.by_id(user_id)
        if account is None:
            raise NotFound("Not Found")
        return account

    async def account(self, login: str, type_: str | None) -> Account:
        return await self.service.account(login, type_=type_)

    async def create_user(
        self, principal: Principal, login: str, email: str | None, site_admin: bool
    ) -> Account:
        self._site_admin(principal)
        return await self.service.create_user(
            login, email=email, password=None, site_admin=site_admin
        )

    async def set_suspended(self, principal: Principal, login: str, suspended: bool) -> None:
        self._site_admin(principal)
        if login.lower() == principal.login:
            raise InvalidInput("You can't suspend yourself.")
        await self.service.set_suspended(login, suspended)

    async def create_org(self, principal: Principal, login: str, admin: str) -> Account:
        self._site_admin(principal)
        return await self.service.create_org(login, admin)

    async def update_org(
        self,
        principal: Principal,
        org_login: str,
        *,
        visibilities: list[str] | None,
        inherit: bool | None,
    ) -> Account:
        org = await self._org_owner(principal, org_login)
        try:
            await self.service.set_org_policy(
                org.login,
                visibilities=",".join(visibilities) if visibilities is not None else None,
                inherit=inherit,
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        return await self.service.account(org.login, type_="Organization")

    async def set_membership(
        self, principal: Principal, org_login: str, user_login: str, role: str
    ) -> None:
        if role not in ("admin", "member"):
            raise InvalidInput("role must be admin or member")
        org = await self._org_owner(principal, org_login)
        await self.service.add_member(org.login, user_login, owner=role == "admin")

    async def create_team(self, principal: Principal, org_login: str, name: str) -> str:
        org = await self._org_owner(principal, org_login)
        slug = name.strip().lower().replace(" ", "-")
        await self.service.create_team(org.login, slug)
        return slug

    async def add_team_member(
        self, principal: Principal, org_login: str, slug: str, user_login: str
    ) -> None:
        org = await self._org_owner(principal, org_login)
        await self.service.add_team_member(org.login, slug, user_login)

    # -- source repositories -----------------------------------------------------------------

    async def create_repository(
        self, principal: Principal, owner: str | None, name: str, private: bool
    ) -> SourceRepository:
        user_id = self._writer(principal)
        if owner is None:
            owner = principal.login
        else:
            org = await self.service.account(owner, type_="Organization")
            if not principal.site_admin and await self.accounts.org_role(org.id, user_id) is None:
                raise NotFound(f"no organization named {owner!r}")
        await self.service.create_repository(f"{owner}/{name}", private=private)
        return await self.service.source_repository(f"{owner}/{name}")

    async def repository(self, principal: Principal, full_name: str) -> SourceRepository:
        repository = await self.service.source_repository(full_name)
        if await self.repository_role(principal, repository) == Role.NONE:
            raise NotFound(f"no repository named {full_name!r}")
        return repository

    async def set_collaborator(
        self, principal: Principal, full_name: str, grantee: str, permission: str
    ) -> None:
        role = REPOSITORY_PERMISSIONS.get(permission)
        if role is None:
            raise InvalidInput(f"invalid permission {permission!r}")
        repository = await self._repository_admin(principal, full_name)
        await self.service.grant_repository(repository.full_name, grantee, role)

    async def set_team_repository(
        self, principal: Principal, org_login: str, slug: str, full_name: str, permission: str
    ) -> None:
        role = REPOSITORY_PERMISSIONS.get(permission)
        if role is None:
            raise InvalidInput(f"invalid permission {permission!r}")
        org = await self._org_owner(principal, org_login)
        repository = await self.service.source_repository(full_name)
        if repository.owner_id != org.id:
            raise InvalidInput("the repository must belong to the team's organization")
        await self.service.grant_repository(repository.full_name, f"{org.login}/{slug}", role)

    # -- tokens ---------------------------------------------------------------------------------

    async def tokens(self, principal: Principal) -> list[TokenRecord]:
        self._user(principal)
        return [t for t in await self.service.list_tokens(principal.login) if t.revoked_at is None]

    async def create_token(
        self, principal: Principal, scopes: list[str], note: str | None, expires: str | None
    ) -> NewToken:
        """A new token of the caller's. Made with a token (not a web session), it may not have
        scopes the calling token lacks (``write:packages`` includes ``read:packages``) and
        expires no later than the calling token."""
        self._user(principal)
        wanted = set(scopes)
        not_after = None
        if principal.scopes is not None:
            have = {s.value for s in principal.scopes}
            if Scope.WRITE_PACKAGES.value in have:
                have.add(Scope.READ_PACKAGES.value)
            beyond = sorted(wanted - have)
            if beyond:
                raise Forbidden(
                    f"A token can't create a token with scopes it lacks: {', '.join(beyond)}"
                )
            caller = await self.service.tokens.by_id(principal.token_id or 0)
            not_after = caller.expires_at if caller else None
        return await self.service.create_pat(
            principal.login,
            ",".join(sorted(wanted)),
            expires=expires,
            note=note,
            not_after=not_after,
        )

    async def revoke_token(self, principal: Principal, token_id: int) -> None:
        """Revoke one of the caller's tokens (with a token: one with ``write:packages``)."""
        self._writer(principal)
        owned = {t.id for t in await self.service.list_tokens(principal.login)}
        if token_id not in owned:
            raise NotFound("no such token")
        await self.service.revoke_token(str(token_id))

    async def create_workflow_token(
        self, principal: Principal, full_name: str, permission: str, expires: str | None
    ) -> NewToken:
        repository = await self._repository_admin(principal, full_name)
        return await self.service.create_workflow_token(
            repository.full_name, permission=permission, expires=expires
        )
