"""Trusted publishing's values and store protocol: the trust policies of source repositories
(which OIDC ID tokens may be exchanged for a workflow token) and the record of ID tokens already
exchanged. The SQL implementation is :mod:`cargobay.metadata.trust`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """ID tokens of ``issuer`` for ``audience`` whose claims match every condition may be
    exchanged for a workflow token of the source repository ``repository_id``."""

    id: int
    repository_id: int
    #: ``OWNER/NAME`` of the source repository.
    repository: str
    issuer: str
    #: None: the registry's public base URL.
    audience: str | None
    #: claim name -> pattern (exact, or a glob), sorted by name.
    claims: tuple[tuple[str, str], ...]
    created_at: datetime


class TrustStore(Protocol):
    async def create(
        self, repository_id: int, issuer: str, audience: str | None, claims: dict[str, str]
    ) -> TrustPolicy:
        """A new policy of the repository (policies are never edited: remove and add)."""

    async def for_repository(self, repository_id: int) -> list[TrustPolicy]:
        """The repository's policies, oldest first."""

    async def for_issuer(self, issuer: str) -> list[TrustPolicy]:
        """Every policy naming ``issuer`` exactly, oldest first."""

    async def delete(self, repository_id: int, policy_id: int) -> bool:
        """Remove the repository's policy ``policy_id``; False if it has none by that id."""

    async def first_use(self, key_hash: str, expires_at: datetime) -> bool:
        """Record an exchanged ID token (its key, kept until ``expires_at``): True the first
        time, False if it was recorded before and has not expired (a replay). Atomic across
        workers and replicas. Expired records are removed on the way."""
