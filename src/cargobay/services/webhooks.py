"""Webhooks of an organization (its owners manage them), of a user (their own), or of the
whole site (site administrators): saving them, reading their delivery log, redelivering.

The secret is stored so deliveries can be signed, encrypted at rest (see
:mod:`cargobay.auth.sealing`); it is never handed back. A receiver URL
naming an address webhooks may not reach is refused when saved (names are checked after
resolution, at every delivery: see :mod:`cargobay.services.webhook_targets`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from cargobay.auth.principal import Kind, Principal
from cargobay.auth.sealing import SealingError, SecretBox
from cargobay.errors import NotFound, Unauthenticated
from cargobay.ports.accounts import AccountStore
from cargobay.ports.webhooks import Delivery, Hook, NewDelivery, WebhookStore
from cargobay.services.accounts import InvalidInput
from cargobay.services.package_core import Forbidden
from cargobay.services.webhook_payloads import EVENT_TYPES, SUBSCRIBABLE
from cargobay.services.webhook_targets import AllowList, check_literal

log = logging.getLogger(__name__)

CONTENT_TYPES = ("json", "form")
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Target:
    """Whose hooks: an organization's (``login``), a user's (``login``; the caller's own
    through the API) or the site's."""

    kind: Literal["org", "user", "site"]
    login: str | None = None


@dataclass(frozen=True, slots=True)
class HookSpec:
    """What a create or an update sets; None leaves a field as it is (or its default)."""

    url: str | None = None
    #: None: keep; "": remove.
    secret: str | None = None
    content_type: str | None = None
    events: tuple[str, ...] | None = None
    active: bool | None = None


#: The operator's command line: acts on any hooks.
OPERATOR = Principal(kind=Kind.USER, site_admin=True)


class Webhooks:
    def __init__(
        self,
        store: WebhookStore,
        accounts: AccountStore,
        *,
        allowed: AllowList,
        box: SecretBox,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.allowed = allowed
        self.box = box
        self._all_sealed = False

    async def owner(self, principal: Principal, target: Target) -> int | None:
        """The owner id of ``target``'s hooks, if ``principal`` may manage them."""
        if principal.anonymous:
            raise Unauthenticated("Requires authentication")
        if principal.kind is not Kind.USER:
            raise Forbidden("Webhooks are managed with a personal access token.")
        if target.kind == "site":
            if not principal.site_admin:
                raise Forbidden("Must be a site administrator.")
            return None
        login = target.login or principal.login
        account = await self.accounts.by_login(login.lower()) if login else None
        if account is None or account.is_org != (target.kind == "org"):
            raise NotFound("Not Found")
        if principal.site_admin or account.id == principal.user_id:
            return account.id
        if target.kind == "user" or principal.user_id is None:
            raise NotFound("Not Found")
        role = await self.accounts.org_role(account.id, principal.user_id)
        if role is None:
            raise NotFound("Not Found")
        if role != "owner":
            raise Forbidden("Must be an organization owner.")
        return account.id

    async def hooks(self, principal: Principal, target: Target) -> list[Hook]:
        return await self.store.for_owner(await self.owner(principal, target))

    async def get(self, principal: Principal, target: Target, hook_id: int) -> Hook:
        owner = await self.owner(principal, target)
        hook = await self.store.get(hook_id)
        if hook is None or hook.owner_id != owner:
            raise NotFound("Not Found")
        return hook

    async def create(self, principal: Principal, target: Target, spec: HookSpec) -> Hook:
        owner = await self.owner(principal, target)
        if not spec.url:
            raise InvalidInput("config.url is required")
        values = self._checked(spec)
        return await self.store.create(
            owner,
            url=values["url"],
            secret=values.get("secret") or None,
            content_type=values.get("content_type", "form"),
            events=values.get("events", ("registry_package",)),
            active=values.get("active", True),
        )

    async def update(
        self, principal: Principal, target: Target, hook_id: int, spec: HookSpec
    ) -> Hook:
        hook = await self.get(principal, target, hook_id)
        values = self._checked(spec)
        if "events" in values:
            values["events"] = list(values["events"])
        if "secret" in values:
            values["secret"] = values["secret"] or None
        updated = await self.store.update(hook.id, values)
        if updated is None:
            raise NotFound("Not Found")
        return updated

    async def delete(self, principal: Principal, target: Target, hook_id: int) -> None:
        hook = await self.get(principal, target, hook_id)
        await self.store.delete(hook.id)

    async def deliveries(
        self,
        principal: Principal,
        target: Target,
        hook_id: int,
        *,
        before: int | None,
        limit: int,
    ) -> list[Delivery]:
        hook = await self.get(principal, target, hook_id)
        limit = max(1, min(limit, MAX_PAGE))
        return await self.store.deliveries(hook.id, before=before, limit=limit)

    async def delivery(
        self, principal: Principal, target: Target, hook_id: int, delivery_id: int
    ) -> Delivery:
        hook = await self.get(principal, target, hook_id)
        found = await self.store.delivery(hook.id, delivery_id)
        if found is None:
            raise NotFound("Not Found")
        return found

    async def redeliver(
        self, principal: Principal, target: Target, hook_id: int, delivery_id: int
    ) -> None:
        """Queue the delivery again (same GUID and payload, after the hook's queued ones)."""
        found = await self.delivery(principal, target, hook_id, delivery_id)
        await self.store.enqueue(
            [
                NewDelivery(
                    found.hook_id,
                    found.event_id,
                    found.guid,
                    found.event,
                    found.action,
                    found.payload,
                    redelivery=True,
                )
            ]
        )

    async def ping(self, principal: Principal, target: Target, hook_id: int) -> None:
        """Queue a ``ping`` event to the hook (GitHub's shape: ``zen``, ``hook_id``, ``hook``)."""
        hook = await self.get(principal, target, hook_id)
        body = {
            "zen": "Keep it logically awesome.",
            "hook_id": hook.id,
            "hook": {
                "id": hook.id,
                "name": "web",
                "active": hook.active,
                "events": list(hook.events),
                "config": {"url": hook.url, "content_type": hook.content_type},
            },
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True)
        await self.store.enqueue(
            [NewDelivery(hook.id, None, str(uuid.uuid4()), "ping", None, payload)]
        )

    async def seal_stored(self) -> int:
        """Encrypt the secrets stored in plain text (before encryption at rest existed) or with
        an older key; returns how many. Once all are sealed with the current key, a no-op."""
        if self._all_sealed:
            return 0
        sealed = 0
        for hook_id, stored in await self.store.secrets():
            if not self.box.stale(stored):
                continue
            try:
                fresh = self.box.seal(self.box.open(stored))
            except SealingError as exc:
                log.warning("webhook %d: its secret stays as it is: %s", hook_id, exc)
                continue
            sealed += await self.store.replace_secret(hook_id, stored, fresh)
        self._all_sealed = True
        return sealed

    def _checked(self, spec: HookSpec) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if spec.url is not None:
            url = spec.url.strip()
            if len(url) > 2048:
                raise InvalidInput("config.url is longer than 2048 characters")
            try:
                check_literal(url, self.allowed)
            except ValueError as exc:
                raise InvalidInput(f"config.url: {exc}") from None
            values["url"] = url
        if spec.secret is not None:
            if len(spec.secret) > 255:
                raise InvalidInput("config.secret is longer than 255 characters")
            values["secret"] = self.box.seal(spec.secret) if spec.secret else ""
        if spec.content_type is not None:
            if spec.content_type not in CONTENT_TYPES:
                raise InvalidInput("config.content_type must be json or form")
            values["content_type"] = spec.content_type
        if spec.events is not None:
            unknown = sorted(set(spec.events) - SUBSCRIBABLE)
            if unknown or not spec.events:
                known = ", ".join(("*", *EVENT_TYPES))
                raise InvalidInput(f"events: unknown {', '.join(unknown) or '(none)'}; use {known}")
            values["events"] = tuple(dict.fromkeys(spec.events))
        if spec.active is not None:
            values["active"] = spec.active
        return values
