"""SQL store of webhooks and their deliveries.

A delivery row is queued (``pending``) in the same transaction that moves the delivery job's
event cursor past the events it was made from, so a crash never loses an event nor queues it
twice. The job sends, per hook, the oldest pending delivery first; the row then records the
request and the answer (the delivery log) and becomes ``delivered`` or, once retries are
exhausted, ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cargobay.metadata.database import Database, aware, now, offloaded
from cargobay.metadata.outbox import advance
from cargobay.metadata.schema import (
    accounts,
    event_cursors,
    events,
    webhook_deliveries,
    webhooks,
)
from cargobay.ports.webhooks import PENDING, Delivery, Hook, NewDelivery


def webhook_backlog(c: sa.Connection) -> dict[str, int]:
    """Deliveries waiting to be sent, and events the delivery job has not read yet."""
    pending = c.execute(
        sa.select(sa.func.count()).where(webhook_deliveries.c.state == PENDING)
    ).scalar()
    position = c.execute(
        sa.select(event_cursors.c.position).where(event_cursors.c.consumer == "webhooks")
    ).scalar()
    unread = c.execute(sa.select(sa.func.count()).where(events.c.id > int(position or 0))).scalar()
    return {"webhook_pending": int(pending or 0), "outbox_backlog": int(unread or 0)}


def _hook(row: Any) -> Hook:
    return Hook(
        id=int(row.id),
        owner_id=row.owner_id,
        url=row.url,
        secret=row.secret,
        content_type=row.content_type,
        events=tuple(row.events or ()),
        active=bool(row.active),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        owner_login=row.owner_login,
        owner_type=row.owner_type,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=int(row.id),
        hook_id=int(row.hook_id),
        event_id=row.event_id,
        guid=row.guid,
        event=row.event,
        action=row.action,
        redelivery=bool(row.redelivery),
        state=row.state,
        attempts=int(row.attempts),
        created_at=aware(row.created_at),
        next_at=aware(row.next_at),
        payload=row.payload,
        delivered_at=aware(row.delivered_at) if row.delivered_at else None,
        status=row.status,
        status_code=row.status_code,
        duration=row.duration,
        request_headers=dict(row.request_headers or {}),
        response_headers=dict(row.response_headers or {}),
        response_body=row.response_body,
    )


_HOOKS = sa.select(
    webhooks, accounts.c.login.label("owner_login"), accounts.c.type.label("owner_type")
).outerjoin(accounts, accounts.c.id == webhooks.c.owner_id)


@offloaded
class SqlWebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- hooks --------------------------------------------------------------------------------

    async def create(
        self,
        owner_id: int | None,
        *,
        url: str,
        secret: str | None,
        content_type: str,
        events: Sequence[str],
        active: bool,
    ) -> Hook:
        at = now()
        with self.db.write() as c:
            hook_id = c.execute(
                sa.insert(webhooks)
                .values(
                    owner_id=owner_id,
                    url=url,
                    secret=secret,
                    content_type=content_type,
                    events=list(events),
                    active=active,
                    created_at=at,
                    updated_at=at,
                )
                .returning(webhooks.c.id)
            ).scalar_one()
            return _hook(c.execute(_HOOKS.where(webhooks.c.id == hook_id)).one())

    async def get(self, hook_id: int) -> Hook | None:
        with self.db.read() as c:
            row = c.execute(_HOOKS.where(webhooks.c.id == hook_id)).first()
        return _hook(row) if row is not None else None

    async def for_owner(self, owner_id: int | None) -> list[Hook]:
        """The hooks of one owner (None: the site's own)."""
        where = (
            webhooks.c.owner_id.is_(None) if owner_id is None else (webhooks.c.owner_id == owner_id)
        )
        with self.db.read() as c:
            return [_hook(r) for r in c.execute(_HOOKS.where(where).order_by(webhooks.c.id))]

    async def receiving(self, owner_ids: Sequence[int]) -> list[Hook]:
        """Active hooks that get events of these owners: theirs and the site's."""
        where = sa.or_(webhooks.c.owner_id.is_(None), webhooks.c.owner_id.in_(list(owner_ids)))
        with self.db.read() as c:
            rows = c.execute(_HOOKS.where(where, webhooks.c.active).order_by(webhooks.c.id))
            return [_hook(r) for r in rows]

    async def update(self, hook_id: int, values: dict[str, Any]) -> Hook | None:
        with self.db.write() as c:
            if values:
                c.execute(
                    sa.update(webhooks)
                    .where(webhooks.c.id == hook_id)
                    .values(**values, updated_at=now())
                )
            row = c.execute(_HOOKS.where(webhooks.c.id == hook_id)).first()
        return _hook(row) if row is not None else None

    async def delete(self, hook_id: int) -> bool:
        """Remove the hook and its deliveries (queued ones are dropped)."""
        with self.db.write() as c:
            c.execute(sa.delete(webhook_deliveries).where(webhook_deliveries.c.hook_id == hook_id))
            return bool(c.execute(sa.delete(webhooks).where(webhooks.c.id == hook_id)).rowcount)

    async def secrets(self) -> list[tuple[int, str]]:
        """Every hook's stored secret, as ``(hook id, secret)``."""
        with self.db.read() as c:
            rows = c.execute(
                sa.select(webhooks.c.id, webhooks.c.secret)
                .where(webhooks.c.secret.is_not(None))
                .order_by(webhooks.c.id)
            )
            return [(int(r.id), str(r.secret)) for r in rows]

    async def replace_secret(self, hook_id: int, old: str, new: str) -> int:
        """Store ``new`` as the hook's secret if it is still ``old``; returns 1 if it was."""
        with self.db.write() as c:
            return int(
                c.execute(
                    sa.update(webhooks)
                    .where(webhooks.c.id == hook_id, webhooks.c.secret == old)
                    .values(secret=new)
                ).rowcount
            )

    # -- the queue ----------------------------------------------------------------------------

    async def enqueue(
        self, queued: Sequence[NewDelivery], *, consumer: str | None = None, position: int = 0
    ) -> None:
        """Queue deliveries and (when ``consumer`` is given) move its event cursor to
        ``position``, in one transaction."""
        at = now()
        with self.db.write() as c:
            if queued:
                c.execute(
                    sa.insert(webhook_deliveries),
                    [
                        {
                            "hook_id": d.hook_id,
                            "event_id": d.event_id,
                            "guid": d.guid,
                            "event": d.event,
                            "action": d.action,
                            "redelivery": d.redelivery,
                            "state": PENDING,
                            "attempts": 0,
                            "created_at": at,
                            "next_at": at,
                            "payload": d.payload,
                        }
                        for d in queued
                    ],
                )
            if consumer is not None:
                advance(c, self.db, consumer, position)

    async def heads(self) -> list[tuple[Hook, Delivery]]:
        """The oldest pending delivery of each active hook (the only one it may send now)."""
        first = (
            sa.select(sa.func.min(webhook_deliveries.c.id))
            .where(webhook_deliveries.c.state == PENDING)
            .group_by(webhook_deliveries.c.hook_id)
        )
        with self.db.read() as c:
            rows = c.execute(
                sa.select(webhook_deliveries).where(webhook_deliveries.c.id.in_(first))
            ).all()
            found = [_delivery(r) for r in rows]
            hooks = {
                h.id: h
                for h in (
                    _hook(r)
                    for r in c.execute(_HOOKS.where(webhooks.c.id.in_([d.hook_id for d in found])))
                )
            }
        return [(hooks[d.hook_id], d) for d in found if d.hook_id in hooks]

    async def next_pending(self, hook_id: int) -> Delivery | None:
        """The hook's oldest pending delivery."""
        with self.db.read() as c:
            row = c.execute(
                sa.select(webhook_deliveries)
                .where(
                    webhook_deliveries.c.hook_id == hook_id,
                    webhook_deliveries.c.state == PENDING,
                )
                .order_by(webhook_deliveries.c.id)
                .limit(1)
            ).first()
        return _delivery(row) if row is not None else None

    async def record(self, delivery_id: int, values: dict[str, Any]) -> None:
        """Store an attempt's outcome (state, attempts, next_at, the log fields)."""
        with self.db.write() as c:
            c.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(**values)
            )

    # -- the log ------------------------------------------------------------------------------

    async def deliveries(self, hook_id: int, *, before: int | None, limit: int) -> list[Delivery]:
        """The hook's deliveries, newest first (``before``: only older ones)."""
        stmt = sa.select(webhook_deliveries).where(webhook_deliveries.c.hook_id == hook_id)
        if before is not None:
            stmt = stmt.where(webhook_deliveries.c.id < before)
        with self.db.read() as c:
            rows = c.execute(stmt.order_by(webhook_deliveries.c.id.desc()).limit(limit))
            return [_delivery(r) for r in rows]

    async def delivery(self, hook_id: int, delivery_id: int) -> Delivery | None:
        with self.db.read() as c:
            row = c.execute(
                sa.select(webhook_deliveries).where(
                    webhook_deliveries.c.hook_id == hook_id,
                    webhook_deliveries.c.id == delivery_id,
                )
            ).first()
        return _delivery(row) if row is not None else None

    async def prune(self, before: datetime) -> int:
        """Drop finished deliveries made before ``before``; returns how many went."""
        with self.db.write() as c:
            return int(
                c.execute(
                    sa.delete(webhook_deliveries).where(
                        webhook_deliveries.c.state != PENDING,
                        webhook_deliveries.c.created_at < before,
                    )
                ).rowcount
            )
