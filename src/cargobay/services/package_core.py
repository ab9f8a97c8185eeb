"""What every package use case shares: the errors of a refused call, the token scopes each kind
of call needs, a page of results, and :class:`PackageCore`: who may do what on a package, finding
one the caller may see, and the events a change makes. The use cases are in
:mod:`cargobay.services.packages` (packages), :mod:`cargobay.services.package_versions` and
:mod:`cargobay.services.package_settings` (visibility, grants, repository links)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cargobay.auth.policy import Role, Scope, Visibility
from cargobay.auth.principal import Principal
from cargobay.errors import CargobayError, Conflict, DeletionRefused, NotFound, Unauthenticated
from cargobay.ports.accounts import AccountStore
from cargobay.ports.packages import PackageRecord, PackageStore, VersionRecord
from cargobay.services.access import AccessService
from cargobay.services.events import Action, Event, EventBus, acting


class ScopeMissing(CargobayError):
    """the token lacks a scope this needs"""

    def __init__(self, needed: tuple[Scope, ...], has: frozenset[Scope] | None) -> None:
        names = ", ".join(s.value for s in needed)
        super().__init__(f"this token needs the {names} scope(s)")
        self.needed = needed
        self.has = has


class Forbidden(CargobayError):
    """you do not have the role this needs on the package"""


READ = (Scope.READ_PACKAGES,)
DELETE = (Scope.READ_PACKAGES, Scope.DELETE_PACKAGES)
WRITE = (Scope.READ_PACKAGES, Scope.WRITE_PACKAGES)


def has_scopes(principal: Principal, needed: tuple[Scope, ...]) -> bool:
    if principal.scopes is None:
        return True
    # write:packages includes read:packages, as on GitHub.
    granted = set(principal.scopes)
    if Scope.WRITE_PACKAGES in granted:
        granted.add(Scope.READ_PACKAGES)
    return all(s in granted for s in needed)


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


class PackageCore:
    def __init__(
        self,
        store: PackageStore,
        accounts: AccountStore,
        access: AccessService,
        *,
        web_base: str,
        restore_window: float,
        protected_downloads: int,
        events: EventBus | None = None,
    ) -> None:
        self.events = events or EventBus()
        self.store = store
        self.accounts = accounts
        self.access = access
        self.web_base = web_base.rstrip("/")
        self.restore_window = timedelta(seconds=restore_window)
        self.protected_downloads = protected_downloads

    # -- who may do what ------------------------------------------------------------------------

    def _require(self, principal: Principal, needed: tuple[Scope, ...]) -> None:
        """The REST API wants a token on every call (as GitHub's does); the pages let anonymous
        visitors read public packages (``principal.web``)."""
        if principal.anonymous and not (principal.web and needed == READ):
            raise Unauthenticated("Requires authentication")
        if not has_scopes(principal, needed):
            raise ScopeMissing(needed, principal.scopes)

    async def role(self, principal: Principal, package: PackageRecord) -> Role:
        return await self.access.role(principal, package.access)

    async def _visible(self, principal: Principal, package: PackageRecord | None) -> PackageRecord:
        """``package`` if the principal may see it (one that never had a version: nobody)."""
        if (
            package is None
            or not package.published
            or await self.role(principal, package) < Role.READ
        ):
            raise NotFound("Package not found.")
        return package

    async def _admin(self, principal: Principal, package: PackageRecord) -> None:
        role = await self.role(principal, package)
        if role < Role.READ:
            raise NotFound("Package not found.")
        if role < Role.ADMIN:
            raise Forbidden("You need admin access to this package to do this.")

    async def owner(self, login: str, type_: str | None) -> int:
        account = await self.accounts.by_login(login.lower())
        if account is None or (type_ is not None and account.type != type_):
            raise NotFound("Not Found")
        return account.id

    @staticmethod
    def _event(
        action: Action,
        principal: Principal,
        package: PackageRecord,
        version: VersionRecord | None = None,
        data: dict[str, object] | None = None,
    ) -> Event:
        return Event(
            action,
            acting(principal),
            owner_id=package.owner_id,
            package_id=package.id,
            package=package.name,
            version_id=version.id if version else None,
            digest=version.digest if version else None,
            data=data or {},
        )

    @staticmethod
    def registry_name(owner: str, package_name: str) -> str:
        return f"{owner.lower()}/{package_name}"

    async def list_packages(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        *,
        visibility: str | None,
        page: Page,
        query: str | None = None,
    ) -> tuple[list[PackageRecord], int]:
        """The owner's packages the principal may read, by name (those whose name contains
        ``query``); and how many there are."""
        self._require(principal, READ)
        owner_id = await self.owner(owner, owner_type)
        needle = (query or "").strip().lower()
        visible = [
            p
            for p in await self.store.for_owner(owner_id, visibility)
            if p.published
            and needle in p.package_name
            and await self.role(principal, p) >= Role.READ
        ]
        return visible[page.offset : page.offset + page.size], len(visible)

    async def check_owner(self, principal: Principal, owner: str, owner_type: str | None) -> None:
        """What listing needs before anything is listed: a token, and the owner exists."""
        self._require(principal, READ)
        await self.owner(owner, owner_type)

    async def get(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> PackageRecord:
        self._require(principal, READ)
        await self.owner(owner, owner_type)
        package = await self.store.get(self.registry_name(owner, package_name))
        return await self._visible(principal, package)

    def _check_downloads(
        self, principal: Principal, package: PackageRecord, downloads: int
    ) -> None:
        if (
            package.visibility == Visibility.PUBLIC
            and downloads > self.protected_downloads
            and not principal.site_admin
        ):
            raise DeletionRefused(
                f"Publicly visible package versions with more than {self.protected_downloads}"
                " downloads cannot be deleted. Ask a site administrator to delete it."
            )

    def _check_window(self, deleted_at: datetime | None) -> None:
        if deleted_at is None:
            raise Conflict("This is not deleted.")
        if deleted_at < datetime.now(UTC) - self.restore_window:
            days = self.restore_window.total_seconds() / 86400
            raise NotFound(f"Deleted more than {days:g} days ago: it can no longer be restored.")
