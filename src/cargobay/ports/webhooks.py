"""Webhooks and their deliveries: the store and the frozen values it returns. A delivery is
``pending`` until sent, then ``delivered`` or, once retries are exhausted, ``failed``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Hook:
    id: int
    #: The organization or user whose events it gets; None: every event of the site.
    owner_id: int | None
    url: str
    #: As stored: sealed (see cargobay.auth.sealing), or plain text if stored before that.
    secret: str | None
    content_type: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime
    updated_at: datetime
    owner_login: str | None = None
    owner_type: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    hook_id: int
    event_id: int | None
    guid: str
    event: str
    action: str | None
    redelivery: bool
    state: str
    attempts: int
    created_at: datetime
    next_at: datetime
    payload: str
    delivered_at: datetime | None = None
    status: str | None = None
    status_code: int | None = None
    duration: float | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    hook_id: int
    event_id: int | None
    guid: str
    event: str
    action: str | None
    payload: str
    redelivery: bool = False


class WebhookStore(Protocol):
    async def create(
        self,
        owner_id: int | None,
        *,
        url: str,
        secret: str | None,
        content_type: str,
        events: Sequence[str],
        active: bool,
    ) -> Hook: ...

    async def get(self, hook_id: int) -> Hook | None: ...

    async def secrets(self) -> list[tuple[int, str]]:
        """Every hook's stored secret, as ``(hook id, secret)``."""

    async def replace_secret(self, hook_id: int, old: str, new: str) -> int:
        """Store ``new`` as the hook's secret if it is still ``old``; returns 1 if it was."""

    async def for_owner(self, owner_id: int | None) -> list[Hook]:
        """The hooks of one owner (None: the site's own)."""

    async def receiving(self, owner_ids: Sequence[int]) -> list[Hook]:
        """Active hooks that get events of these owners: theirs and the site's."""

    async def update(self, hook_id: int, values: dict[str, Any]) -> Hook | None: ...

    async def delete(self, hook_id: int) -> bool:
        """Remove the hook and its deliveries (queued ones are dropped)."""

    async def enqueue(
        self, queued: Sequence[NewDelivery], *, consumer: str | None = None, position: int = 0
    ) -> None:
        """Queue deliveries and (when ``consumer`` is given) move its event cursor to
        ``position``, in one transaction."""

    async def heads(self) -> list[tuple[Hook, Delivery]]:
        """The oldest pending delivery of each active hook (the only one it may send now)."""

    async def next_pending(self, hook_id: int) -> Delivery | None:
        """The hook's oldest pending delivery."""

    async def record(self, delivery_id: int, values: dict[str, Any]) -> None:
        """Store an attempt's outcome (state, attempts, next_at, the log fields)."""

    async def deliveries(self, hook_id: int, *, before: int | None, limit: int) -> list[Delivery]:
        """The hook's deliveries, newest first (``before``: only older ones)."""

    async def delivery(self, hook_id: int, delivery_id: int) -> Delivery | None: ...

    async def prune(self, before: datetime) -> int:
        """Drop finished deliveries made before ``before``; returns how many went."""
