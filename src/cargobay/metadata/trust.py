"""SQL store of trust policies and exchanged ID tokens (see :mod:`cargobay.ports.trust`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.schema import accounts, seen_id_tokens, source_repositories, trust_policies
from cargobay.ports.trust import TrustPolicy

_COLUMNS = (
    trust_policies.c.id,
    trust_policies.c.repository_id,
    accounts.c.login,
    source_repositories.c.name,
    trust_policies.c.issuer,
    trust_policies.c.audience,
    trust_policies.c.claims,
    trust_policies.c.created_at,
)
_FROM = trust_policies.join(
    source_repositories, source_repositories.c.id == trust_policies.c.repository_id
).join(accounts, accounts.c.id == source_repositories.c.owner_id)


def _policy(row: Sequence[Any]) -> TrustPolicy:
    claims = row[6] or {}
    return TrustPolicy(
        id=int(row[0]),
        repository_id=int(row[1]),
        repository=f"{row[2]}/{row[3]}",
        issuer=row[4],
        audience=row[5],
        claims=tuple(sorted((str(k), str(v)) for k, v in claims.items())),
        created_at=aware(row[7]),
    )


@offloaded
class SqlTrustStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _select(self, *where: sa.ColumnElement[bool]) -> list[TrustPolicy]:
        stmt = sa.select(*_COLUMNS).select_from(_FROM).where(*where).order_by(trust_policies.c.id)
        with self.db.read() as c:
            return [_policy(tuple(r)) for r in c.execute(stmt)]

    async def create(
        self, repository_id: int, issuer: str, audience: str | None, claims: dict[str, str]
    ) -> TrustPolicy:
        with self.db.write() as c:
            policy_id = c.execute(
                sa.insert(trust_policies)
                .values(
                    repository_id=repository_id,
                    issuer=issuer,
                    audience=audience,
                    claims=dict(claims),
                    created_at=now(),
                )
                .returning(trust_policies.c.id)
            ).scalar_one()
        (policy,) = self._select(trust_policies.c.id == policy_id)
        return policy

    async def for_repository(self, repository_id: int) -> list[TrustPolicy]:
        return self._select(trust_policies.c.repository_id == repository_id)

    async def for_issuer(self, issuer: str) -> list[TrustPolicy]:
        return self._select(trust_policies.c.issuer == issuer)

    async def delete(self, repository_id: int, policy_id: int) -> bool:
        with self.db.write() as c:
            result = c.execute(
                sa.delete(trust_policies).where(
                    trust_policies.c.id == policy_id,
                    trust_policies.c.repository_id == repository_id,
                )
            )
            return result.rowcount > 0

    async def first_use(self, key_hash: str, expires_at: datetime) -> bool:
        at = now()
        with self.db.write() as c:
            c.execute(sa.delete(seen_id_tokens).where(seen_id_tokens.c.expires_at <= at))
            inserted = c.execute(
                self.db._insert(seen_id_tokens)
                .values(key_hash=key_hash, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["key_hash"])
                .returning(seen_id_tokens.c.key_hash)
            ).first()
            return inserted is not None
