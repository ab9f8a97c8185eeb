"""Storage used by packages and namespaces (see :mod:`cargobay.metadata.usage`): anyone who
sees a package sees its size; namespaces' totals are for the operator (``cargobay usage``)."""

from __future__ import annotations

from cargobay.auth.principal import Principal
from cargobay.errors import NotFound
from cargobay.metadata.accounts import SqlAccountStore
from cargobay.metadata.packages import SqlPackageStore
from cargobay.metadata.usage import SqlUsageStore, Usage
from cargobay.services.packages import PackageService


class UsageService:
    def __init__(
        self,
        packages: PackageService | None,
        records: SqlPackageStore,
        accounts: SqlAccountStore,
        usage: SqlUsageStore,
    ) -> None:
        """``packages`` checks who sees what; the operator's commands go without it."""
        self.packages = packages
        self.records = records
        self.accounts = accounts
        self.usage = usage

    async def package(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> Usage:
        assert self.packages is not None
        found = await self.packages.get(principal, owner, owner_type, package_name)
        return await self.usage.for_package(found.id)

    async def operator_usage(self, name: str) -> Usage:
        """``OWNER/PACKAGE`` (a package) or ``OWNER`` (every package of a user or org)."""
        if "/" in name:
            package = await self.records.get(name)
            if package is None:
                raise NotFound(f"no package {name!r}")
            return await self.usage.for_package(package.id)
        account = await self.accounts.by_login(name.lower())
        if account is None:
            raise NotFound(f"no user or organization {name!r}")
        return await self.usage.for_owner(account.id)
