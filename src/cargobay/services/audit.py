"""The audit log: who did what to which package, from where, and when.

It is the event outbox read back (see :mod:`cargobay.services.events`): every event is written
in the transaction of its change, so the log misses nothing that happened and records nothing
that didn't. It is append-only; only the retention job removes entries, once they are older
than ``retention`` and every outbox consumer has handled them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cargobay.auth.principal import Principal
from cargobay.errors import CargobayError, NotFound, Unauthenticated
from cargobay.ports.accounts import AccountStore
from cargobay.ports.events import EventFilter, EventLog
from cargobay.services.events import Action, Actor, Event, current_actor

log = logging.getLogger(__name__)

MAX_PAGE = 100


class AuditForbidden(CargobayError):
    """you may not read this audit log"""


class InvalidFilter(CargobayError):
    """invalid audit-log filter"""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of an audit-log read. ``phrase`` takes GitHub's search syntax for the keys
    ``action:``, ``actor:``, ``package:`` and ``created:>=DATE`` / ``created:<DATE``."""

    phrase: str = ""
    action: str | None = None
    actor: str | None = None
    package: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_TERM = re.compile(r"(-?)(action|actor|package|created):(\S+)")


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFilter(f"invalid date {value!r}: use YYYY-MM-DD or ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _filter(query: AuditQuery) -> EventFilter:
    actions: list[str] = []
    actor, package = query.actor, query.package
    since, until = query.since, query.until
    for term in query.phrase.split():
        m = _TERM.fullmatch(term)
        if m is None or m.group(1):
            raise InvalidFilter(f"unsupported search term {term[:60]!r}")
        key, value = m.group(2), m.group(3)
        if key == "action":
            actions.append(value)
        elif key == "actor":
            actor = value
        elif key == "package":
            package = value
        elif value.startswith(">="):
            since = _date(value[2:])
        elif value.startswith("<"):
            until = _date(value[1:])
        else:
            raise InvalidFilter("created: takes >=DATE or <DATE")
    if query.action:
        actions.append(query.action)
    expanded: list[str] = []
    for name in actions:
        if "." in name:
            expanded.append(name)
        else:  # a category: "packages" means every packages.* action
            expanded += [a.value for a in Action if a.value.startswith(name + ".")]
            if not expanded:
                raise InvalidFilter(f"unknown action {name!r}")
    return EventFilter(
        actions=tuple(expanded),
        actor=actor.lower() if actor else None,
        package=package,
        since=since,
        until=until,
    )


class AuditLog:
    def __init__(self, events: EventLog, accounts: AccountStore, *, retention: float) -> None:
        self.events = events
        self.accounts = accounts
        self.retention = timedelta(seconds=retention)

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def _signed_in(principal: Principal) -> int:
        if principal.anonymous or principal.user_id is None:
            raise Unauthenticated("Requires authentication")
        return principal.user_id

    async def for_org(
        self, principal: Principal, org: str, query: AuditQuery, *, after: int | None, limit: int
    ) -> list[Event]:
        """An organization's log: its owners and site administrators read it."""
        user_id = self._signed_in(principal)
        account = await self.accounts.by_login(org.lower())
        if account is None or not account.is_org:
            raise NotFound("Not Found")
        if not principal.site_admin:
            role = await self.accounts.org_role(account.id, user_id)
            if role is None:
                raise NotFound("Not Found")
            if role != "owner":
                raise AuditForbidden("Must be an organization owner.")
        where = replace(_filter(query), owner_id=account.id, before=after)
        return await self.events.search(where, limit=_limit(limit), newest_first=True)

    async def for_user(
        self, principal: Principal, query: AuditQuery, *, after: int | None, limit: int
    ) -> list[Event]:
        """The caller's own log: what happened in their namespace, and what they did."""
        user_id = self._signed_in(principal)
        where = replace(_filter(query), involving=user_id, before=after)
        return await self.events.search(where, limit=_limit(limit), newest_first=True)

    async def for_site(
        self, principal: Principal, query: AuditQuery, *, after: int | None, limit: int
    ) -> list[Event]:
        """Everything: site administrators only."""
        self._signed_in(principal)
        if not principal.site_admin:
            raise AuditForbidden("Must be a site administrator.")
        where = replace(_filter(query), before=after)
        return await self.events.search(where, limit=_limit(limit), newest_first=True)

    async def export(self, since: datetime | None, *, batch: int = 500) -> list[Event]:
        """Every entry since ``since``, oldest first (the operator's export)."""
        found: list[Event] = []
        after = 0
        while True:
            page = await self.events.search(
                EventFilter(since=since, after=after), limit=batch, newest_first=False
            )
            found += page
            if len(page) < batch:
                return found
            after = page[-1].id or after

    # -- writing ------------------------------------------------------------------------------

    async def sign_in_failed(self, login: str, client: str, *, via: str) -> None:
        """Record a failed sign-in (password on the pages, or a token): in the log of the user
        it named, when there is one."""
        name = login.strip().lower()[:39]
        account = await self.accounts.by_login(name) if name else None
        actor = current_actor()
        event = Event(
            Action.SIGN_IN_FAILED,
            Actor(address=client or actor.address),
            owner_id=account.id if account and not account.is_org else None,
            data={"login": name, "via": via},
        )
        await self.events.append([event])

    async def prune(self) -> int:
        """The retention job: drop entries older than the retention period."""
        removed = await self.events.prune(datetime.now(UTC) - self.retention)
        if removed:
            log.info("audit log: removed %d entries past the retention period", removed)
        return removed


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


def entry(event: Event) -> dict[str, Any]:
    """An event as an entry of GitHub's audit log (the REST API and the export)."""
    millis = int(event.at.timestamp() * 1000)
    namespace = event.names.get("namespace")
    is_org = event.names.get("namespace_type") == "Organization"
    workflow = event.names.get("workflow_repository")
    access = None
    if event.actor.token_id is not None:
        access = "workflow token" if event.actor.workflow_repository_id else "personal access token"
    return {
        "@timestamp": millis,
        "_document_id": str(event.id),
        "action": event.action.value,
        "actor": event.actor.login or (f"workflow:{workflow}" if workflow else None),
        "actor_id": event.actor.user_id,
        "actor_ip": event.actor.address,
        "created_at": millis,
        "org": namespace if is_org else None,
        "user": namespace if namespace and not is_org else None,
        "package": event.package,
        "package_version_id": event.version_id,
        "digest": event.digest,
        "token_id": event.actor.token_id,
        "programmatic_access_type": access,
        "workflow_repository": workflow,
        "data": dict(event.data),
    }
