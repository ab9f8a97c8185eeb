"""Storage quotas of namespaces (users and organizations): set by site administrators (the CLI,
the REST API), enforced on every push (see :mod:`cargobay.metadata.quota` for what counts and
how the counter stays right).

A push is refused with 403 DENIED as early as its size is known: at upload start for a
monolithic upload with a Content-Length, at a PATCH whose declared size would pass the quota
(unless the namespace has a blob that large: the bytes may be that one, which counts nothing),
otherwise when the blob is committed (``PUT ?digest=``), and at a manifest PUT for the
manifest's own bytes. A cross-repository mount with no room is not made: the answer is an upload
session (202), as the OCI spec says of mounts a registry does not make, and that upload's commit
is refused. The refusal at commit happens under the namespace's lock, in the transaction that
would have linked the blob, so racing pushes can't jointly pass the quota.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from cargobay.auth.principal import Principal
from cargobay.errors import NotFound, Unauthenticated, format_bytes
from cargobay.ports.accounts import AccountStore
from cargobay.ports.quota import NamespaceQuota, QuotaStore, warning_threshold
from cargobay.services.accounts import InvalidInput
from cargobay.services.package_core import Forbidden

log = logging.getLogger(__name__)

#: The header a push's response carries once the namespace is past its warning threshold.
WARNING_HEADER = "X-Cargobay-Quota-Warning"

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?i?b?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


def parse_size(text: str) -> int:
    """``10GB``, ``10 GiB``, ``500M``, ``1.5TB``, ``1048576`` as bytes (k/M/G/T decimal as
    docker prints sizes, KiB/MiB/GiB/TiB binary). Raises ValueError on anything else."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 10GB, 500MiB, 1048576)")
    number, unit = match.group(1), match.group(2).lower()
    prefix = unit[:1] if unit[:1] in "kmgtp" else ""
    factor = _UNITS[prefix]
    if prefix and "i" in unit:
        factor = 1024 ** (list(_UNITS).index(prefix))
    elif unit and not prefix and unit != "b":
        raise ValueError(f"not a size: {text!r} (e.g. 10GB, 500MiB, 1048576)")
    return int(float(number) * factor)


@dataclass(frozen=True, slots=True)
class QuotaView:
    """A namespace's usage against its quota, as the CLI and the API show it."""

    namespace: str
    used: int
    quota: int | None
    warn_percent: int | None

    @property
    def percent(self) -> float | None:
        return None if not self.quota else 100 * self.used / self.quota

    @property
    def warning(self) -> bool:
        row = NamespaceQuota(0, self.namespace, self.used, self.quota, self.warn_percent)
        threshold = warning_threshold(row)
        return threshold is not None and self.used >= threshold

    def describe(self) -> str:
        if self.quota is None:
            return f"{self.namespace}: {format_bytes(self.used)} used, no quota"
        line = (
            f"{self.namespace}: {format_bytes(self.used)} used of {format_bytes(self.quota)}"
            f" ({self.percent:.1f}%)"
        )
        if self.warn_percent is not None:
            line += f", warns at {self.warn_percent}%"
        return line


def _view(row: NamespaceQuota) -> QuotaView:
    return QuotaView(row.login, row.used, row.quota, row.warn_percent)


class QuotaService:
    def __init__(self, store: QuotaStore, accounts: AccountStore) -> None:
        self.store = store
        self.accounts = accounts

    # -- the push path --------------------------------------------------------------------------

    async def precheck(self, repository: str, digest: str | None, size: int) -> None:
        """Refuse (QuotaExceeded) a push of ``size`` bytes the namespace has no room for."""
        await self.store.precheck(repository, digest, size)

    async def warning(self, repository: str) -> str | None:
        """The warning a push's response carries, if the namespace is past its threshold."""
        row = await self.store.for_repository(repository)
        if row is None or row.quota is None or row.warn_percent is None:
            return None
        view = _view(row)
        if not view.warning:
            return None
        return (
            f"namespace {row.login} uses {format_bytes(row.used)} of its"
            f" {format_bytes(row.quota)} quota ({view.percent:.0f}%)"
        )

    # -- the operator (CLI) ---------------------------------------------------------------------

    async def _owner(self, login: str) -> int:
        account = await self.accounts.by_login(login.lower())
        if account is None:
            raise NotFound(f"no user or organization {login!r}")
        return account.id

    async def show(self, login: str) -> QuotaView:
        row = await self.store.get(await self._owner(login))
        if row is None:
            raise NotFound(f"no user or organization {login!r}")
        return _view(row)

    async def set(self, login: str, size: int, warn_percent: int | None = None) -> QuotaView:
        if size < 0:
            raise InvalidInput("a quota is a size of 0 bytes or more")
        if warn_percent is not None and not 1 <= warn_percent <= 100:
            raise InvalidInput("the warning threshold is a percentage from 1 to 100")
        owner_id = await self._owner(login)
        await self.store.set_quota(owner_id, size, warn_percent)
        log.info("quota of %s set to %d bytes (warn at %s%%)", login, size, warn_percent)
        return await self.show(login)

    async def clear(self, login: str) -> QuotaView:
        await self.store.set_quota(await self._owner(login), None, None)
        log.info("quota of %s removed", login)
        return await self.show(login)

    async def recount(self, login: str | None = None) -> dict[str, int]:
        """Recount one namespace's counter (or every one's); returns the corrections made."""
        owner_ids = None if login is None else [await self._owner(login)]
        corrections = await self.store.recount(owner_ids)
        named: dict[str, int] = {}
        for owner_id, delta in corrections.items():
            account = await self.accounts.by_id(owner_id)
            named[account.login if account else str(owner_id)] = delta
        return named

    # -- site administrators (REST) -------------------------------------------------------------

    @staticmethod
    def _site_admin(principal: Principal) -> None:
        if principal.anonymous:
            raise Unauthenticated("Requires authentication")
        if not principal.site_admin:
            raise Forbidden("Must be a site administrator.")

    async def admin_show(self, principal: Principal, login: str) -> QuotaView:
        self._site_admin(principal)
        return await self.show(login)

    async def admin_set(
        self, principal: Principal, login: str, size: int, warn_percent: int | None
    ) -> QuotaView:
        self._site_admin(principal)
        return await self.set(login, size, warn_percent)

    async def admin_clear(self, principal: Principal, login: str) -> QuotaView:
        self._site_admin(principal)
        return await self.clear(login)
