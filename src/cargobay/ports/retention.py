"""Retention policies (what a cleanup removes from a package, see ``docs/retention.md``): the store
and the frozen values it takes and returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cargobay.ports.events import Event


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    #: Untagged versions last pushed more than this many days ago go (None: never).
    untagged_days: int | None = None
    #: Keep this many most recent tags (by when they were pushed) ...
    keep_tags: int | None = None
    #: ... and the tags matching these (globs, or regular expressions after ``re:``).
    tag_patterns: tuple[str, ...] = ()
    #: Keep versions pulled within this many days.
    pulled_days: int | None = None

    @property
    def prunes_tags(self) -> bool:
        """Whether tagged versions can go at all (a tag rule is set)."""
        return self.keep_tags is not None or bool(self.tag_patterns)

    @property
    def active(self) -> bool:
        return self.untagged_days is not None or self.prunes_tags


@dataclass(frozen=True, slots=True)
class Removal:
    """A version the policy removes, and why."""

    id: int
    digest: str
    kind: str
    tags: tuple[str, ...]
    pushed_at: datetime
    reason: str


class RetentionStore(Protocol):
    async def get(
        self, *, owner_id: int | None = None, package_id: int | None = None
    ) -> RetentionPolicy | None:
        """The policy set on a package, or on a user or organization; None if none is."""

    async def put(
        self, policy: RetentionPolicy, *, owner_id: int | None = None, package_id: int | None = None
    ) -> None: ...

    async def clear(
        self, *, owner_id: int | None = None, package_id: int | None = None
    ) -> bool: ...

    async def governed(self) -> list[int]:
        """Packages (not deleted) with a policy of their own or of their owner."""

    async def preview(
        self,
        package_id: int,
        policy: RetentionPolicy,
        matches: Callable[[str], bool],
        protected_downloads: int | None,
        at: datetime,
    ) -> list[Removal]:
        """What :meth:`apply` would remove now; changes nothing."""

    async def apply(
        self,
        package_id: int,
        policy: RetentionPolicy,
        matches: Callable[[str], bool],
        protected_downloads: int | None,
        at: datetime,
        events: Callable[[Sequence[Removal]], Sequence[Event]],
    ) -> list[Removal]:
        """Remove what the policy removes (ordinary soft deletions, restorable for the restore
        window), with ``events(removed)`` in the same transaction. Returns what was removed."""
