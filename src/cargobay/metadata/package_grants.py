"""SQL store of the roles granted on a package to users, teams and source repositories."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from cargobay.metadata.database import Database, offloaded
from cargobay.metadata.outbox import append
from cargobay.metadata.schema import (
    accounts,
    package_access,
    source_repositories,
    teams,
)
from cargobay.ports.events import Event
from cargobay.ports.packages import Grant


@offloaded
class SqlGrantStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def grants(self, package_id: int) -> list[Grant]:
        """Roles granted on the package to users, teams and source repositories."""
        with self.db.read() as c:
            rows = c.execute(
                sa.select(package_access).where(package_access.c.repository_id == package_id)
            ).all()
            granted: dict[str, set[int]] = {}
            for r in rows:
                granted.setdefault(r.grantee_type, set()).add(r.grantee_id)
            team_rows = c.execute(
                sa.select(teams.c.id, teams.c.org_id, teams.c.slug).where(
                    teams.c.id.in_(granted.get("team", set()))
                )
            ).all()
            repo_rows = c.execute(
                sa.select(
                    source_repositories.c.id,
                    source_repositories.c.owner_id,
                    source_repositories.c.name,
                ).where(source_repositories.c.id.in_(granted.get("source_repository", set())))
            ).all()
            account_ids = granted.get("user", set()) | {t.org_id for t in team_rows}
            account_ids |= {r.owner_id for r in repo_rows}
            logins = dict(
                c.execute(
                    sa.select(accounts.c.id, accounts.c.login).where(accounts.c.id.in_(account_ids))
                ).all()
            )
        team_names = {t.id: f"{logins.get(t.org_id, '?')}/{t.slug}" for t in team_rows}
        repo_names = {r.id: f"{logins.get(r.owner_id, '?')}/{r.name}" for r in repo_rows}
        names = {"user": logins, "team": team_names, "source_repository": repo_names}
        return sorted(
            (
                Grant(
                    r.grantee_type,
                    r.grantee_id,
                    names[r.grantee_type].get(r.grantee_id, "?"),
                    r.role,
                )
                for r in rows
                if r.grantee_type in names
            ),
            key=lambda g: (g.grantee_type, g.grantee),
        )

    async def grant(
        self,
        package_id: int,
        grantee_type: str,
        grantee_id: int,
        role: str,
        events: Sequence[Event] = (),
    ) -> None:
        with self.db.write() as c:
            append(c, events)
            c.execute(
                self.db.upsert(
                    package_access,
                    ["repository_id", "grantee_type", "grantee_id"],
                    {
                        "repository_id": package_id,
                        "grantee_type": grantee_type,
                        "grantee_id": grantee_id,
                        "role": role,
                    },
                )
            )

    async def revoke(
        self, package_id: int, grantee_type: str, grantee_id: int, events: Sequence[Event] = ()
    ) -> bool:
        with self.db.write() as c:
            result = c.execute(
                sa.delete(package_access).where(
                    package_access.c.repository_id == package_id,
                    package_access.c.grantee_type == grantee_type,
                    package_access.c.grantee_id == grantee_id,
                )
            )
            if result.rowcount > 0:
                append(c, events)
            return result.rowcount > 0
