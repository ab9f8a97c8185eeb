"""Storage used by packages and namespaces (see :mod:`cargobay.metadata.usage`): anyone who
sees a package sees its size; a namespace's figures cover the packages the caller sees, and
its counter and quota are shown to those who administer it (the user, an organization's
owners, site administrators) and to the operator (``cargobay usage``, ``cargobay quota``)."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.auth.principal import Kind, Principal
from cargobay.errors import NotFound
from cargobay.ports.accounts import AccountStore
from cargobay.ports.packages import PackageStore
from cargobay.ports.quota import QuotaStore
from cargobay.ports.usage import Usage, UsageStore
from cargobay.services.package_core import Page
from cargobay.services.packages import PackageService
from cargobay.services.quotas import QuotaView

#: Every package of a namespace on one page.
_ALL = Page(1, 2**31)


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    namespace: str
    #: The packages the caller sees, together (a blob several of them link counts once).
    usage: Usage
    packages: int
    #: The namespace's counter and quota: only for those who administer it.
    quota: QuotaView | None


class UsageService:
    def __init__(
        self,
        packages: PackageService | None,
        records: PackageStore,
        accounts: AccountStore,
        usage: UsageStore,
        quotas: QuotaStore | None = None,
    ) -> None:
        """``packages`` checks who sees what; the operator's commands go without it."""
        self.packages = packages
        self.records = records
        self.accounts = accounts
        self.usage = usage
        self.quotas = quotas

    async def package(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> Usage:
        assert self.packages is not None
        found = await self.packages.get(principal, owner, owner_type, package_name)
        return await self.usage.for_package(found.id)

    async def namespace(
        self, principal: Principal, owner: str, owner_type: str | None
    ) -> NamespaceUsage:
        """What the namespace's packages the caller sees use; private packages the caller
        can't read are left out, so their sizes never show."""
        assert self.packages is not None
        visible, count = await self.packages.list_packages(
            principal, owner, owner_type, visibility=None, page=_ALL
        )
        owner_id = await self.packages.owner(owner, owner_type)
        usage = await self.usage.for_packages([p.id for p in visible])
        quota = None
        if self.quotas is not None and await self.administers(principal, owner_id):
            row = await self.quotas.get(owner_id)
            if row is not None:
                quota = QuotaView(row.login, row.used, row.quota, row.warn_percent)
        account = await self.accounts.by_id(owner_id)
        login = account.login if account is not None else owner.lower()
        return NamespaceUsage(login, usage, count, quota)

    async def administers(self, principal: Principal, owner_id: int) -> bool:
        """Whether the caller may see the namespace's totals and quota."""
        if principal.kind is not Kind.USER or principal.user_id is None:
            return False
        if principal.site_admin or principal.user_id == owner_id:
            return True
        return await self.accounts.org_role(owner_id, principal.user_id) == "owner"

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
