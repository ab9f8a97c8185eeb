"""SQL stores for accounts (users, organizations, teams, source repositories), tokens and
package access. Values are the frozen dataclasses of :mod:`cargobay.ports.accounts`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cargobay.errors import AlreadyExists, NotFound
from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.outbox import append
from cargobay.metadata.schema import (
    accounts,
    org_members,
    package_access,
    repositories,
    source_repositories,
    source_repository_access,
    team_members,
    teams,
    tokens,
    web_sessions,
)
from cargobay.ports.accounts import (
    Account,
    PackageAccess,
    SourceRepository,
    TokenRecord,
    UserPackageFacts,
)
from cargobay.ports.events import Event

_ACCOUNT_COLUMNS = (
    "id, login, type, email, password_hash, site_admin, suspended, package_visibilities,"
    " inherit_access_default"
)
_ACCOUNT_BY_LOGIN = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE login = :login"
_ACCOUNT_BY_ID = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = :id"
_TOKEN_COLUMNS = (
    "id, kind, token_hash, user_id, scopes, note, source_repository_id, created_at, expires_at,"
    " last_used_at, revoked_at"
)
_TOKEN_BY_HASH = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = :hash"
_TOKEN_BY_ID = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = :id"
_PACKAGE = (
    "SELECT id, name, owner_id, visibility, source_repository_id, inherit_access,"
    " published_by_repository_id FROM repositories WHERE name = :name"
)
_USER_TEAMS = "SELECT team_id FROM team_members WHERE user_id = :user"
_PACKAGE_GRANTS = (
    "SELECT role FROM package_access WHERE repository_id = :package AND ("
    " (grantee_type = 'user' AND grantee_id = :user)"
    f" OR (grantee_type = 'team' AND grantee_id IN ({_USER_TEAMS})))"
)
_ACTIONS_GRANT = (
    "SELECT role FROM package_access WHERE repository_id = :package"
    " AND grantee_type = 'source_repository' AND grantee_id = :repository"
)
_ORG_ROLE = "SELECT role FROM org_members WHERE org_id = :org AND user_id = :user"
_SOURCE_ROLES = (
    "SELECT role FROM source_repository_access WHERE repository_id = :repository AND ("
    " (grantee_type = 'user' AND grantee_id = :user)"
    f" OR (grantee_type = 'team' AND grantee_id IN ({_USER_TEAMS})))"
)
_SOURCE_REPOSITORY = (
    "SELECT s.id, s.owner_id, a.login, s.name, s.private, a.type FROM source_repositories s"
    " JOIN accounts a ON a.id = s.owner_id WHERE s.id = :id"
)


def _account(row: Sequence[Any]) -> Account:
    return Account(
        id=int(row[0]),
        login=row[1],
        type=row[2],
        email=row[3],
        password_hash=row[4],
        site_admin=bool(row[5]),
        suspended=bool(row[6]),
        package_visibilities=frozenset(v for v in (row[7] or "").split(",") if v),
        inherit_access_default=bool(row[8]),
    )


def _maybe_time(value: Any) -> datetime | None:
    return None if value is None else aware(value)


def _token(row: Sequence[Any]) -> TokenRecord:
    return TokenRecord(
        id=int(row[0]),
        kind=row[1],
        token_hash=row[2],
        user_id=row[3],
        scopes=tuple(s for s in (row[4] or "").split(",") if s),
        note=row[5],
        source_repository_id=row[6],
        created_at=aware(row[7]),
        expires_at=_maybe_time(row[8]),
        last_used_at=_maybe_time(row[9]),
        revoked_at=_maybe_time(row[10]),
    )


def _package(row: Sequence[Any]) -> PackageAccess:
    return PackageAccess(
        id=int(row[0]),
        name=row[1],
        owner_id=row[2],
        visibility=row[3],
        source_repository_id=row[4],
        inherit_access=bool(row[5]),
        published_by_repository_id=row[6],
    )


def _source_repository(row: Sequence[Any]) -> SourceRepository:
    return SourceRepository(
        id=int(row[0]),
        owner_id=int(row[1]),
        owner=row[2],
        name=row[3],
        private=bool(row[4]),
        owner_type=row[5],
    )


def _roles(rows: list[Sequence[Any]]) -> tuple[str, ...]:
    return tuple(str(r[0]) for r in rows)


@offloaded
class SqlAccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads (hot path: cached until the next commit) ---------------------------------------

    async def by_login(self, login: str) -> Account | None:
        return self.db.fetch_one(_ACCOUNT_BY_LOGIN, {"login": login.lower()}, _account)

    async def by_id(self, account_id: int) -> Account | None:
        return self.db.fetch_one(_ACCOUNT_BY_ID, {"id": account_id}, _account)

    async def org_role(self, org_id: int, user_id: int) -> str | None:
        roles = self.db.query(_ORG_ROLE, {"org": org_id, "user": user_id}, _roles)
        return roles[0] if roles else None

    async def source_repository(self, repository_id: int) -> SourceRepository | None:
        return self.db.fetch_one(_SOURCE_REPOSITORY, {"id": repository_id}, _source_repository)

    async def source_repository_by_name(self, owner: str, name: str) -> SourceRepository | None:
        owner_account = await self.by_login(owner)
        if owner_account is None:
            return None
        with self.db.read() as c:
            row = c.execute(
                sa.select(source_repositories.c.id).where(
                    source_repositories.c.owner_id == owner_account.id,
                    source_repositories.c.name == name.lower(),
                )
            ).first()
        return None if row is None else await self.source_repository(int(row[0]))

    async def source_roles(self, repository_id: int, user_id: int) -> tuple[str, ...]:
        return self.db.query(_SOURCE_ROLES, {"repository": repository_id, "user": user_id}, _roles)

    # -- writes (operators) ---------------------------------------------------------------------

    async def create(
        self,
        login: str,
        type_: str,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        site_admin: bool = False,
    ) -> Account:
        try:
            with self.db.write() as c:
                c.execute(
                    sa.insert(accounts).values(
                        login=login.lower(),
                        type=type_,
                        email=email,
                        password_hash=password_hash,
                        site_admin=site_admin,
                        suspended=False,
                        package_visibilities="private,internal,public",
                        inherit_access_default=True,
                        created_at=now(),
                    )
                )
        except sa.exc.IntegrityError:
            raise AlreadyExists(f"the name {login!r} is already taken") from None
        account = await self.by_login(login)
        assert account is not None
        return account

    async def update(self, account_id: int, **values: Any) -> None:
        with self.db.write() as c:
            c.execute(sa.update(accounts).where(accounts.c.id == account_id).values(**values))

    async def count_users(self) -> int:
        with self.db.read() as c:
            return int(
                c.execute(
                    sa.select(sa.func.count())
                    .select_from(accounts)
                    .where(accounts.c.type == "User")
                ).scalar_one()
            )

    async def users(self) -> list[Account]:
        """Every user, by login."""
        sql = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE type = 'User' ORDER BY login"
        with self.db.read() as c:
            return [_account(row) for row in c.execute(sa.text(sql)).all()]

    async def set_org_member(self, org_id: int, user_id: int, role: str) -> None:
        with self.db.write() as c:
            c.execute(
                self.db.upsert(
                    org_members,
                    ["org_id", "user_id"],
                    {"org_id": org_id, "user_id": user_id, "role": role},
                )
            )

    async def create_team(self, org_id: int, slug: str) -> int:
        try:
            with self.db.write() as c:
                return int(
                    c.execute(
                        sa.insert(teams)
                        .values(org_id=org_id, slug=slug.lower(), created_at=now())
                        .returning(teams.c.id)
                    ).scalar_one()
                )
        except sa.exc.IntegrityError:
            raise AlreadyExists(f"the team {slug!r} already exists") from None

    async def team_id(self, org_id: int, slug: str) -> int | None:
        with self.db.read() as c:
            value = c.execute(
                sa.select(teams.c.id).where(teams.c.org_id == org_id, teams.c.slug == slug.lower())
            ).scalar()
        return None if value is None else int(value)

    async def add_team_member(self, team_id: int, user_id: int) -> None:
        with self.db.write() as c:
            c.execute(
                self.db._insert(team_members)
                .values(team_id=team_id, user_id=user_id)
                .on_conflict_do_nothing(index_elements=["team_id", "user_id"])
            )

    async def create_source_repository(self, owner_id: int, name: str, private: bool) -> int:
        try:
            with self.db.write() as c:
                return int(
                    c.execute(
                        sa.insert(source_repositories)
                        .values(
                            owner_id=owner_id, name=name.lower(), private=private, created_at=now()
                        )
                        .returning(source_repositories.c.id)
                    ).scalar_one()
                )
        except sa.exc.IntegrityError:
            raise AlreadyExists(f"the repository {name!r} already exists") from None

    async def grant_source_repository(
        self, repository_id: int, grantee_type: str, grantee_id: int, role: str
    ) -> None:
        with self.db.write() as c:
            c.execute(
                self.db.upsert(
                    source_repository_access,
                    ["repository_id", "grantee_type", "grantee_id"],
                    {
                        "repository_id": repository_id,
                        "grantee_type": grantee_type,
                        "grantee_id": grantee_id,
                        "role": role,
                    },
                )
            )


@offloaded
class SqlTokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_hash(self, token_hash: str) -> TokenRecord | None:
        return self.db.fetch_one(_TOKEN_BY_HASH, {"hash": token_hash}, _token)

    async def by_id(self, token_id: int) -> TokenRecord | None:
        return self.db.fetch_one(_TOKEN_BY_ID, {"id": token_id}, _token)

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
        with self.db.write() as c:
            token_id = c.execute(
                sa.insert(tokens)
                .values(
                    kind=kind,
                    token_hash=token_hash,
                    user_id=user_id,
                    scopes=",".join(scopes),
                    note=note,
                    source_repository_id=source_repository_id,
                    created_at=now(),
                    expires_at=expires_at,
                )
                .returning(tokens.c.id)
            ).scalar_one()
            if events is not None:
                append(c, events(int(token_id)))
        record = await self.by_id(int(token_id))
        assert record is not None
        return record

    async def for_user(self, user_id: int) -> list[TokenRecord]:
        with self.db.read() as c:
            rows = c.execute(
                sa.text(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE user_id = :user ORDER BY id"),
                {"user": user_id},
            ).all()
        return [_token(tuple(r)) for r in rows]

    async def revoke(self, token_id: int, events: Sequence[Event] = ()) -> bool:
        with self.db.write() as c:
            result = c.execute(
                sa.update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            if result.rowcount > 0:
                append(c, events)
            return result.rowcount > 0

    async def touch(self, token_id: int) -> None:
        with self.db.write() as c:
            c.execute(sa.update(tokens).where(tokens.c.id == token_id).values(last_used_at=now()))


@offloaded
class SqlPackageAccessStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> PackageAccess | None:
        return self.db.fetch_one(_PACKAGE, {"name": name}, _package)

    async def user_facts(self, package: PackageAccess, user_id: int) -> UserPackageFacts:
        grants = self.db.query(_PACKAGE_GRANTS, {"package": package.id, "user": user_id}, _roles)
        org_role = None
        if package.owner_id is not None:
            roles = self.db.query(_ORG_ROLE, {"org": package.owner_id, "user": user_id}, _roles)
            org_role = roles[0] if roles else None
        source_roles: tuple[str, ...] = ()
        if package.inherit_access and package.source_repository_id is not None:
            source_roles = self.db.query(
                _SOURCE_ROLES, {"repository": package.source_repository_id, "user": user_id}, _roles
            )
        return UserPackageFacts(grants=grants, org_role=org_role, source_roles=source_roles)

    async def actions_grant(self, package_id: int, repository_id: int) -> str | None:
        roles = self.db.query(
            _ACTIONS_GRANT, {"package": package_id, "repository": repository_id}, _roles
        )
        return roles[0] if roles else None

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
        with self.db.write() as c:
            inserted = c.execute(
                self.db._insert(repositories)
                .values(
                    name=name,
                    created_at=now(),
                    owner_id=owner_id,
                    visibility=visibility,
                    inherit_access=inherit_access,
                    source_repository_id=source_repository_id,
                    published_by_repository_id=published_by_repository_id,
                )
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(repositories.c.id)
            ).scalar()
            if inserted is not None and admin_user_id is not None:
                c.execute(
                    sa.insert(package_access).values(
                        repository_id=inserted,
                        grantee_type="user",
                        grantee_id=admin_user_id,
                        role="admin",
                    )
                )
        package = await self.get(name)
        if package is None:
            raise NotFound(f"package {name!r} vanished")
        return package


@offloaded
class SqlSessionStore:
    """Web sign-in sessions, found by the SHA-256 of the cookie's secret."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, id_hash: str, user_id: int, csrf: str, expires_at: datetime) -> None:
        with self.db.write() as c:
            c.execute(
                sa.insert(web_sessions).values(
                    id_hash=id_hash,
                    user_id=user_id,
                    csrf=csrf,
                    created_at=now(),
                    expires_at=expires_at,
                )
            )

    async def get(self, id_hash: str) -> tuple[int, str, datetime] | None:
        """``(user_id, csrf, expires_at)`` of the session, or None."""
        with self.db.read() as c:
            row = c.execute(
                sa.select(
                    web_sessions.c.user_id, web_sessions.c.csrf, web_sessions.c.expires_at
                ).where(web_sessions.c.id_hash == id_hash)
            ).first()
        return (int(row.user_id), row.csrf, aware(row.expires_at)) if row else None

    async def delete(self, id_hash: str) -> None:
        with self.db.write() as c:
            c.execute(sa.delete(web_sessions).where(web_sessions.c.id_hash == id_hash))

    async def delete_expired(self) -> None:
        with self.db.write() as c:
            c.execute(sa.delete(web_sessions).where(web_sessions.c.expires_at < now()))

    async def delete_for_user(self, user_id: int) -> int:
        """End every session of the user; returns how many there were."""
        with self.db.write() as c:
            return int(
                c.execute(sa.delete(web_sessions).where(web_sessions.c.user_id == user_id)).rowcount
            )
