"""The domain-event stream of the service layer.

Services build :class:`Event` values for what they change and hand them to the store call
that makes the change: the store appends them to the outbox in the same transaction. Once the
transaction has committed, the service passes them to :meth:`EventBus.dispatch`, which runs the
in-process subscribers (e.g. linking a package to the repository its first push names).
Durable consumers (the audit log, webhooks, metrics) read the outbox instead: they see every
committed event even if the process died right after the commit.

Who acts comes from the request: the API layer calls :func:`bind_client` when a request
arrives and :func:`bind_principal` once it knows the caller; :func:`current_actor` reads both.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar

from cargobay.auth.principal import Principal
from cargobay.ports.events import Action, Actor, Event

log = logging.getLogger(__name__)

__all__ = ["Action", "Actor", "Event", "EventBus", "bind_client", "bind_principal"]

Subscriber = Callable[[Event], Awaitable[None]]

_NOBODY = Actor()
_actor: ContextVar[Actor | None] = ContextVar("cargobay_actor", default=None)


def bind_client(address: str | None) -> None:
    """The client address of the current request (before anyone is signed in)."""
    _actor.set(Actor(address=address))


def bind_principal(principal: Principal) -> None:
    """The caller of the current request, once authenticated."""
    _actor.set(actor_of(principal, current_actor().address))


def bind_actor(actor: Actor) -> None:
    _actor.set(actor)


def current_actor() -> Actor:
    return _actor.get() or _NOBODY


def actor_of(principal: Principal, address: str | None = None) -> Actor:
    if principal.anonymous:
        return Actor(address=address)
    return Actor(
        user_id=principal.user_id,
        login=principal.login if principal.user_id is not None else "",
        token_id=principal.token_id,
        workflow_repository_id=principal.workflow_repository_id,
        address=address,
    )


def acting(principal: Principal) -> Actor:
    """The actor of a service call made for ``principal`` in the current request."""
    return actor_of(principal, current_actor().address)


class EventBus:
    """In-process subscribers by action, called after the change has committed."""

    def __init__(self) -> None:
        self._subscribers: dict[Action, list[Subscriber]] = {}

    def subscribe(self, action: Action, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(action, []).append(subscriber)

    async def dispatch(self, events: Sequence[Event]) -> None:
        """Run the subscribers of each event, in order. Their errors propagate: the change is
        committed and its event is in the outbox either way."""
        for event in events:
            for subscriber in self._subscribers.get(event.action, ()):
                await subscriber(event)
