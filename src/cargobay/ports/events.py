"""Domain events as values: what happened, who did it, from where, to which package.

The service layer decides which events a change makes; the stores append them to the
``events`` table (the outbox) in the same transaction as the change, so neither exists
without the other. Ids grow with commit order, so a consumer that remembers the last id it
handled (see :class:`EventLog`) sees every event, in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol


class Action(StrEnum):
    """Event names, in the shape of GitHub's audit-log actions."""

    PACKAGE_PUBLISHED = "packages.package_published"
    VERSION_PUBLISHED = "packages.package_version_published"
    TAG_MOVED = "packages.package_tag_moved"
    TAG_DELETED = "packages.package_tag_deleted"
    VERSION_DELETED = "packages.package_version_deleted"
    VERSION_RESTORED = "packages.package_version_restored"
    PACKAGE_DELETED = "packages.package_deleted"
    PACKAGE_RESTORED = "packages.package_restored"
    VISIBILITY_CHANGED = "packages.package_visibility_changed"
    ACCESS_GRANTED = "packages.package_access_granted"
    ACCESS_REVOKED = "packages.package_access_revoked"
    TOKEN_CREATED = "personal_access_token.created"
    TOKEN_REVOKED = "personal_access_token.revoked"
    #: A workflow token handed to a CI job for its OIDC ID token (trusted publishing).
    TOKEN_EXCHANGED = "workflow_token.exchanged"
    SIGN_IN_FAILED = "user.failed_login"
    GC_RUN = "registry.gc_run"
    QUOTA_WARNING = "registry.quota_warning"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a user (through a token, or signed in to the pages), a workflow of a
    source repository, or nobody known (anonymous, the operator's command line)."""

    user_id: int | None = None
    login: str = ""
    token_id: int | None = None
    workflow_repository_id: int | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    action: Action
    actor: Actor
    #: The namespace (user or organization) whose audit log shows the event.
    owner_id: int | None = None
    package_id: int | None = None
    #: The package's registry name (``owner/name``) when the event happened.
    package: str | None = None
    version_id: int | None = None
    digest: str | None = None
    #: Action-specific details (tag, previous digest, visibility, grantee, ...).
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Set once stored: grows with commit order.
    id: int | None = None
    #: Read back: the logins and names the ids stood for (``namespace``, ``workflow_repository``).
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What an audit-log query selects; None matches everything."""

    owner_id: int | None = None
    #: Events in this account's namespace or made by it.
    involving: int | None = None
    actor: str | None = None
    actions: tuple[str, ...] = ()
    package: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Cursor pagination, newest first: only events with a smaller id.
    before: int | None = None
    #: Oldest first: only events with a greater id.
    after: int | None = None


class EventLog(Protocol):
    async def append(self, found: Sequence[Event]) -> None:
        """Append events that describe no other change (e.g. a failed sign-in)."""

    async def search(
        self, where: EventFilter, *, limit: int, newest_first: bool
    ) -> list[Event]: ...

    async def after(self, position: int, *, limit: int) -> list[Event]:
        """Events with an id greater than ``position``, oldest first (for consumers)."""

    async def position(self, consumer: str) -> int:
        """The last event id ``consumer`` handled (0 before its first)."""

    async def advance(self, consumer: str, position: int) -> None:
        """Record that ``consumer`` handled every event up to ``position``; never moves back."""

    async def prune(self, before: datetime) -> int:
        """Delete events older than ``before`` that every consumer has handled; returns how
        many went."""
