"""Storage used by packages and namespaces: the store and the value it returns. ``stored`` counts
each blob once (what the registry keeps on disk for them), ``as_pushed`` counts each version's
blobs for every version; manifest bytes count in both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Usage:
    stored: int
    as_pushed: int
    blobs: int
    versions: int


class UsageStore(Protocol):
    async def for_package(self, package_id: int) -> Usage: ...

    async def for_packages(self, package_ids: list[int]) -> Usage:
        """The packages together: a blob several of them link is counted once."""

    async def for_owner(self, owner_id: int) -> Usage:
        """Every package of the owner, deleted ones not purged yet included; a blob several
        packages link is stored once."""
