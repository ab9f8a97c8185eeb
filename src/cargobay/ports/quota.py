"""Namespace quotas: the store and the frozen value it returns (what counts against a quota:
:mod:`cargobay.metadata.quota`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class NamespaceQuota:
    """A namespace's usage counter and quota (``quota`` None: no limit)."""

    owner_id: int
    login: str
    used: int
    quota: int | None
    warn_percent: int | None


def warning_threshold(row: NamespaceQuota) -> int | None:
    """Bytes from which the namespace is warned, if it has a quota and a threshold."""
    if row.quota is None or row.warn_percent is None:
        return None
    return row.quota * row.warn_percent // 100


class QuotaStore(Protocol):
    async def get(self, owner_id: int) -> NamespaceQuota | None:
        """The namespace's counter and quota; None if there is no such account."""

    async def for_repository(self, repository: str) -> NamespaceQuota | None:
        """The counter and quota of the namespace ``repository`` belongs to, if any."""

    async def precheck(self, repository: str, digest: str | None, size: int) -> None:
        """Raise QuotaExceeded if storing ``size`` more bytes (of blob ``digest``, if known:
        nothing if the namespace links it already) would pass the namespace's quota. A cheap
        early refusal without locks; the commit checks again under the namespace's lock."""

    async def set_quota(self, owner_id: int, quota: int | None, warn_percent: int | None) -> None:
        """Set (or with None, remove) the namespace's quota and warning threshold."""

    async def recount(self, owner_ids: list[int] | None = None) -> dict[int, int]:
        """Set the counters of ``owner_ids`` (None: every account) from what they link;
        returns each one's correction. Safe while pushes go on (each under its row's lock)."""
