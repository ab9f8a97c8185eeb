"""Operator use cases for accounts, source repositories, tokens and package settings
(the CLI today, the REST API and web pages later)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cargobay.auth.passwords import check_password, hash_password
from cargobay.auth.policy import Role, Visibility, parse_scopes
from cargobay.auth.secrets import TokenKind, hash_token, new_token, token_kind
from cargobay.errors import CargobayError, NotFound
from cargobay.oci.numbers import parse_id
from cargobay.ports.accounts import Account, PackageAccess, SourceRepository, TokenRecord
from cargobay.ports.packages import AccountStores
from cargobay.services.events import Action, Event, current_actor

_LOGIN = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}")
_REPO_NAME = re.compile(r"[a-z0-9._-]{1,100}")
_TEAM = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


class InvalidInput(CargobayError):
    """invalid input"""


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str
    record: TokenRecord


def parse_duration(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``."""
    match = re.fullmatch(r"([0-9]{1,9})([smhd])", value.strip())
    if not match:
        raise InvalidInput(f"invalid duration {value!r}: use e.g. 30d, 12h, 90m or 45s")
    number, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: number})


class AccountService:
    def __init__(self, metadata: AccountStores, *, workflow_token_ttl: int) -> None:
        self.accounts = metadata.accounts
        self.tokens = metadata.tokens
        self.packages = metadata.packages
        self.package_records = metadata.package_records
        self.sessions = metadata.sessions
        self.workflow_token_ttl = workflow_token_ttl

    # -- lookups ----------------------------------------------------------------------------

    async def account(self, login: str, *, type_: str | None = None) -> Account:
        account = await self.accounts.by_login(login)
        if account is None or (type_ is not None and account.type != type_):
            kind = {"User": "user", "Organization": "organization"}.get(type_ or "", "account")
            raise NotFound(f"no {kind} named {login!r}")
        return account

    async def source_repository(self, full_name: str) -> SourceRepository:
        owner, _, name = full_name.partition("/")
        repository = await self.accounts.source_repository_by_name(owner, name)
        if repository is None:
            raise NotFound(f"no repository named {full_name!r}")
        return repository

    async def package(self, name: str) -> PackageAccess:
        package = await self.packages.get(name)
        if package is None:
            raise NotFound(f"no package named {name!r}")
        return package

    async def _grantee(self, grantee: str) -> tuple[str, int]:
        """``USER`` or ``ORG/TEAM``."""
        if "/" in grantee:
            org_login, _, slug = grantee.partition("/")
            org = await self.account(org_login, type_="Organization")
            team_id = await self.accounts.team_id(org.id, slug)
            if team_id is None:
                raise NotFound(f"no team {slug!r} in {org.login!r}")
            return "team", team_id
        return "user", (await self.account(grantee, type_="User")).id

    # -- accounts -----------------------------------------------------------------------------

    async def create_user(
        self, login: str, *, email: str | None, password: str | None, site_admin: bool
    ) -> Account:
        _check_login(login)
        if password is not None:
            check_password(password)
        return await self.accounts.create(
            login,
            "User",
            email=email,
            password_hash=hash_password(password) if password else None,
            site_admin=site_admin,
        )

    async def set_password(self, login: str, password: str) -> None:
        """Set or reset a user's web sign-in password (the rules: :func:`check_password`). Every
        open web session of the user ends: whoever signed in with the old one is out."""
        check_password(password)
        user = await self.account(login, type_="User")
        await self.accounts.update(user.id, password_hash=hash_password(password))
        await self.sessions.delete_for_user(user.id)

    async def users(self) -> list[Account]:
        return await self.accounts.users()

    async def set_suspended(self, login: str, suspended: bool) -> None:
        """Suspend (or let back in) a user. Suspending ends their open web sessions, so lifting
        the suspension later never revives one: they sign in again."""
        user = await self.account(login, type_="User")
        await self.accounts.update(user.id, suspended=suspended)
        if suspended:
            await self.sessions.delete_for_user(user.id)

    async def create_org(self, login: str, owner: str) -> Account:
        _check_login(login)
        owner_account = await self.account(owner, type_="User")
        org = await self.accounts.create(login, "Organization")
        await self.accounts.set_org_member(org.id, owner_account.id, "owner")
        return org

    async def add_member(self, org_login: str, user_login: str, *, owner: bool) -> None:
        org = await self.account(org_login, type_="Organization")
        user = await self.account(user_login, type_="User")
        await self.accounts.set_org_member(org.id, user.id, "owner" if owner else "member")

    async def set_org_policy(
        self, org_login: str, *, visibilities: str | None, inherit: bool | None
    ) -> None:
        org = await self.account(org_login, type_="Organization")
        values: dict[str, object] = {}
        if visibilities is not None:
            chosen = [v.strip() for v in visibilities.split(",") if v.strip()]
            for v in chosen:
                Visibility(v)
            values["package_visibilities"] = ",".join(chosen)
        if inherit is not None:
            values["inherit_access_default"] = inherit
        if values:
            await self.accounts.update(org.id, **values)

    async def create_team(self, org_login: str, slug: str) -> None:
        if not _TEAM.fullmatch(slug.lower()):
            raise InvalidInput(f"invalid team name {slug!r}")
        org = await self.account(org_login, type_="Organization")
        await self.accounts.create_team(org.id, slug)

    async def add_team_member(self, org_login: str, slug: str, user_login: str) -> None:
        org = await self.account(org_login, type_="Organization")
        team_id = await self.accounts.team_id(org.id, slug)
        if team_id is None:
            raise NotFound(f"no team {slug!r} in {org.login!r}")
        user = await self.account(user_login, type_="User")
        if await self.accounts.org_role(org.id, user.id) is None:
            await self.accounts.set_org_member(org.id, user.id, "member")
        await self.accounts.add_team_member(team_id, user.id)

    # -- source repositories --------------------------------------------------------------

    async def create_repository(self, full_name: str, *, private: bool) -> None:
        owner_login, sep, name = full_name.partition("/")
        if not sep or not _REPO_NAME.fullmatch(name.lower()):
            raise InvalidInput(f"invalid repository name {full_name!r}: use OWNER/NAME")
        owner = await self.account(owner_login)
        await self.accounts.create_source_repository(owner.id, name, private)

    async def grant_repository(self, full_name: str, grantee: str, role: str) -> None:
        repository = await self.source_repository(full_name)
        grantee_type, grantee_id = await self._grantee(grantee)
        await self.accounts.grant_source_repository(
            repository.id, grantee_type, grantee_id, _role(role)
        )

    # -- tokens -----------------------------------------------------------------------------

    async def create_pat(
        self,
        login: str,
        scopes: str,
        *,
        expires: str | None,
        note: str | None,
        not_after: datetime | None = None,
    ) -> NewToken:
        """A personal access token; ``not_after`` caps its expiry (a token made by a token
        never outlives it)."""
        user = await self.account(login, type_="User")
        try:
            parsed = sorted(s.value for s in parse_scopes(scopes))
        except ValueError as exc:
            raise InvalidInput(f"unknown scope: {exc}") from None
        if not parsed:
            raise InvalidInput("a token needs at least one scope")
        token = new_token(TokenKind.PAT)

        def created(token_id: int) -> list[Event]:
            data = {"token_id": token_id, "kind": "pat", "scopes": parsed, "user": user.login}
            return [Event(Action.TOKEN_CREATED, current_actor(), owner_id=user.id, data=data)]

        record = await self.tokens.create(
            kind=TokenKind.PAT.value,
            token_hash=hash_token(token),
            user_id=user.id,
            scopes=parsed,
            note=note,
            source_repository_id=None,
            expires_at=_capped(_expiry(expires), not_after),
            events=created,
        )
        return NewToken(token, record)

    async def create_workflow_token(
        self,
        full_name: str,
        *,
        permission: str,
        expires: str | None,
        note: str | None = None,
        exchanged: Mapping[str, object] | None = None,
    ) -> NewToken:
        """A workflow token bound to the source repository ``full_name``. ``exchanged``: the
        facts of a trusted-publishing exchange (issuer, subject, policy), recorded with it."""
        if permission not in ("read", "write"):
            raise InvalidInput("permission must be read or write")
        repository = await self.source_repository(full_name)
        token = new_token(TokenKind.WORKFLOW)
        expires_at = _expiry(expires) or datetime.now(UTC) + timedelta(
            seconds=self.workflow_token_ttl
        )

        def created(token_id: int) -> list[Event]:
            data = {
                "token_id": token_id,
                "kind": "workflow",
                "permission": permission,
                "repository": repository.full_name,
            }
            owner = repository.owner_id
            action = Action.TOKEN_CREATED
            if exchanged is not None:
                action = Action.TOKEN_EXCHANGED
                data.update(exchanged)
            return [Event(action, current_actor(), owner_id=owner, data=data)]

        record = await self.tokens.create(
            kind=TokenKind.WORKFLOW.value,
            token_hash=hash_token(token),
            user_id=None,
            scopes=["write:packages" if permission == "write" else "read:packages"],
            note=note or f"workflow of {repository.full_name}",
            source_repository_id=repository.id,
            expires_at=expires_at,
            events=created,
        )
        return NewToken(token, record)

    async def list_tokens(self, login: str) -> list[TokenRecord]:
        user = await self.account(login, type_="User")
        return await self.tokens.for_user(user.id)

    async def revoke_token(self, id_or_token: str) -> None:
        token_id = parse_id(id_or_token)
        if token_id is not None:
            record = await self.tokens.by_id(token_id)
        elif token_kind(id_or_token):
            record = await self.tokens.by_hash(hash_token(id_or_token))
        else:
            raise InvalidInput("give a token id or the token itself")
        found = False
        if record is not None:
            owner = record.user_id
            if owner is None and record.source_repository_id is not None:
                repository = await self.accounts.source_repository(record.source_repository_id)
                owner = repository.owner_id if repository else None
            data = {"token_id": record.id, "kind": record.kind}
            revoked = Event(Action.TOKEN_REVOKED, current_actor(), owner_id=owner, data=data)
            found = await self.tokens.revoke(record.id, [revoked])
        if not found:
            raise NotFound("no such active token")

    # -- packages -----------------------------------------------------------------------------

    async def set_visibility(self, name: str, visibility: str) -> None:
        package = await self.package(name)
        target = Visibility(visibility)
        if package.visibility == Visibility.PUBLIC and target is not Visibility.PUBLIC:
            raise InvalidInput("a public package cannot be made private or internal again")
        changed = Event(
            Action.VISIBILITY_CHANGED,
            current_actor(),
            owner_id=package.owner_id,
            package_id=package.id,
            package=package.name,
            data={"visibility": target.value, "before": package.visibility},
        )
        await self.package_records.update(package.id, events=[changed], visibility=target.value)

    async def grant_package(self, name: str, grantee: str, role: str) -> None:
        package = await self.package(name)
        grantee_type, grantee_id = await self._grantee(grantee)
        await self._grant(package, grantee_type, grantee_id, grantee, _role(role))

    async def grant_actions(self, name: str, full_name: str, role: str) -> None:
        package = await self.package(name)
        repository = await self.source_repository(full_name)
        await self._grant(package, "source_repository", repository.id, full_name, _role(role))

    async def _grant(
        self, package: PackageAccess, grantee_type: str, grantee_id: int, name: str, role: str
    ) -> None:
        granted = Event(
            Action.ACCESS_GRANTED,
            current_actor(),
            owner_id=package.owner_id,
            package_id=package.id,
            package=package.name,
            data={
                "grantee_type": grantee_type,
                "grantee": name,
                "grantee_id": grantee_id,
                "role": role,
            },
        )
        await self.package_records.grant(package.id, grantee_type, grantee_id, role, [granted])

    async def link_package(self, name: str, full_name: str | None, *, inherit: bool) -> None:
        package = await self.package(name)
        repository = await self.source_repository(full_name) if full_name else None
        await self.package_records.update(
            package.id,
            source_repository_id=repository.id if repository else None,
            inherit_access=inherit,
        )


def _check_login(login: str) -> None:
    if not _LOGIN.fullmatch(login.lower()):
        raise InvalidInput(
            f"invalid name {login!r}: letters, digits and single hyphens, at most 39 characters"
        )


def _role(value: str) -> str:
    try:
        return Role.parse(value).label
    except KeyError:
        raise InvalidInput(f"invalid role {value!r}: use read, write or admin") from None


def _capped(expires_at: datetime | None, not_after: datetime | None) -> datetime | None:
    if not_after is None:
        return expires_at
    return not_after if expires_at is None else min(expires_at, not_after)


def _expiry(value: str | None) -> datetime | None:
    return datetime.now(UTC) + parse_duration(value) if value else None
