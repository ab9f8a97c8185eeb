"""SQL store of domain events (the outbox): appended inside the transaction of the change they
describe, read by the audit log and by consumers that keep a cursor.

On PostgreSQL, writers that append events take one transaction-scoped advisory lock first, so
event ids become visible in the order they were handed out: a consumer reading ``id > cursor``
never skips an event that commits later with a smaller id. (SQLite has one writer at a time.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.schema import (
    accounts,
    event_cursors,
    events,
    repositories,
    source_repositories,
)
from cargobay.ports.events import Action, Actor, Event, EventFilter

#: The advisory lock key that orders event appends on PostgreSQL ("cbevents").
_APPEND_LOCK = 0x6362_6576_656E_7473 & 0x7FFF_FFFF_FFFF_FFFF
_namespace = accounts.alias("namespace")
_repo_owner = accounts.alias("repo_owner")


def append(c: sa.Connection, found: Sequence[Event]) -> None:
    """Append ``found`` in the open transaction ``c`` (nothing when empty). Events that name
    their package only by registry name get its id and owner filled in."""
    if not found:
        return
    found = [_resolved(c, e) for e in found]
    if c.dialect.name == "postgresql":
        c.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    c.execute(
        sa.insert(events),
        [
            {
                "action": e.action.value,
                "created_at": e.at,
                "owner_id": e.owner_id,
                "package_id": e.package_id,
                "package": e.package,
                "version_id": e.version_id,
                "digest": e.digest,
                "actor_id": e.actor.user_id,
                "actor_login": e.actor.login or None,
                "token_id": e.actor.token_id,
                "workflow_repository_id": e.actor.workflow_repository_id,
                "address": (e.actor.address or "")[:64] or None,
                "data": dict(e.data) or None,
            }
            for e in found
        ],
    )


def advance(c: sa.Connection, db: Database, consumer: str, position: int) -> None:
    """Move ``consumer``'s cursor to ``position`` in the open transaction ``c``; never back."""
    current = c.execute(
        sa.select(event_cursors.c.position).where(event_cursors.c.consumer == consumer)
    ).scalar()
    if current is None or int(current) < position:
        c.execute(
            db.upsert(
                event_cursors,
                ["consumer"],
                {"consumer": consumer, "position": position, "updated_at": now()},
            )
        )


def _resolved(c: sa.Connection, event: Event) -> Event:
    if event.package is None or event.package_id is not None:
        return event
    row = c.execute(
        sa.select(repositories.c.id, repositories.c.owner_id).where(
            repositories.c.name == event.package
        )
    ).first()
    if row is None:
        return event
    owner_id = event.owner_id if event.owner_id is not None else row.owner_id
    return replace(event, package_id=row.id, owner_id=owner_id)


def _event(row: Any) -> Event:
    names = {
        "namespace": row.namespace,
        "namespace_type": row.namespace_type,
        "workflow_repository": row.workflow,
    }
    return Event(
        id=int(row.id),
        action=Action(row.action),
        actor=Actor(
            user_id=row.actor_id,
            login=row.actor_login or "",
            token_id=row.token_id,
            workflow_repository_id=row.workflow_repository_id,
            address=row.address,
        ),
        owner_id=row.owner_id,
        package_id=row.package_id,
        package=row.package,
        version_id=row.version_id,
        digest=row.digest,
        data=dict(row.data or {}),
        at=aware(row.created_at),
        names={k: v for k, v in names.items() if v},
    )


@offloaded
class SqlEventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, found: Sequence[Event]) -> None:
        """Append events that describe no other change (e.g. a failed sign-in)."""
        with self.db.write() as c:
            append(c, found)

    async def search(self, where: EventFilter, *, limit: int, newest_first: bool) -> list[Event]:
        stmt = (
            sa.select(
                events,
                _namespace.c.login.label("namespace"),
                _namespace.c.type.label("namespace_type"),
                (_repo_owner.c.login + "/" + source_repositories.c.name).label("workflow"),
            )
            .outerjoin(_namespace, _namespace.c.id == events.c.owner_id)
            .outerjoin(
                source_repositories,
                source_repositories.c.id == events.c.workflow_repository_id,
            )
            .outerjoin(_repo_owner, _repo_owner.c.id == source_repositories.c.owner_id)
        )
        if where.owner_id is not None:
            stmt = stmt.where(events.c.owner_id == where.owner_id)
        if where.involving is not None:
            stmt = stmt.where(
                sa.or_(events.c.owner_id == where.involving, events.c.actor_id == where.involving)
            )
        if where.actor is not None:
            stmt = stmt.where(events.c.actor_login == where.actor)
        if where.actions:
            stmt = stmt.where(events.c.action.in_(where.actions))
        if where.package is not None:
            stmt = stmt.where(events.c.package == where.package)
        if where.since is not None:
            stmt = stmt.where(events.c.created_at >= where.since)
        if where.until is not None:
            stmt = stmt.where(events.c.created_at < where.until)
        if where.before is not None:
            stmt = stmt.where(events.c.id < where.before)
        if where.after is not None:
            stmt = stmt.where(events.c.id > where.after)
        order = events.c.id.desc() if newest_first else events.c.id
        with self.db.read() as c:
            return [_event(r) for r in c.execute(stmt.order_by(order).limit(limit)).all()]

    async def after(self, position: int, *, limit: int) -> list[Event]:
        """Events with an id greater than ``position``, oldest first (for consumers)."""
        return await self.search(EventFilter(after=position), limit=limit, newest_first=False)

    async def position(self, consumer: str) -> int:
        """The last event id ``consumer`` handled (0 before its first)."""
        with self.db.read() as c:
            value = c.execute(
                sa.select(event_cursors.c.position).where(event_cursors.c.consumer == consumer)
            ).scalar()
        return int(value or 0)

    async def advance(self, consumer: str, position: int) -> None:
        """Record that ``consumer`` handled every event up to ``position``; never moves back."""
        with self.db.write() as c:
            advance(c, self.db, consumer, position)

    async def prune(self, before: datetime) -> int:
        """Delete events older than ``before`` that every consumer has handled; returns how
        many went."""
        with self.db.write() as c:
            stmt = sa.delete(events).where(events.c.created_at < before)
            slowest = c.execute(sa.select(sa.func.min(event_cursors.c.position))).scalar()
            if slowest is not None:
                stmt = stmt.where(events.c.id <= int(slowest))
            return int(c.execute(stmt).rowcount)
