"""Retention policies: per package, and per user or organization as the default of its packages
(a package with a policy of its own ignores its owner's). The cleanup runs as a periodic job
and on demand; a dry run lists exactly what it would remove. What it removes is deleted as if by
hand (restorable for the restore window, one ``package_version_deleted`` event each), and it
never breaks an image: see :mod:`cargobay.metadata.retention_plan`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cargobay.auth.policy import Scope, Visibility
from cargobay.auth.principal import Kind, Principal
from cargobay.errors import NotFound, Unauthenticated
from cargobay.ports.accounts import Account, AccountStore
from cargobay.ports.events import Action, Actor, Event
from cargobay.ports.packages import PackageRecord, PackageStore
from cargobay.ports.retention import Removal, RetentionPolicy, RetentionStore
from cargobay.services.events import EventBus, acting
from cargobay.services.package_core import Forbidden, ScopeMissing
from cargobay.services.packages import PackageService
from cargobay.services.retention_rules import validate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Effective:
    """The policy a package follows, and where it comes from (``package``, ``owner``, or
    ``none``)."""

    policy: RetentionPolicy | None
    source: str


@dataclass
class RetentionReport:
    dry_run: bool
    packages: int = 0
    removed: dict[str, list[Removal]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def versions(self) -> int:
        return sum(len(r) for r in self.removed.values())


class RetentionService:
    def __init__(
        self,
        packages: PackageService | None,
        records: PackageStore,
        accounts: AccountStore,
        store: RetentionStore,
        *,
        protected_downloads: int,
        events: EventBus | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``packages`` checks who may do what; the operator's commands go without it."""
        self.packages = packages
        self.records = records
        self.accounts = accounts
        self.store = store
        self.protected_downloads = protected_downloads
        self.events = events or EventBus()
        self.clock = clock

    # -- policies of a package ------------------------------------------------------------------

    async def effective(self, package: PackageRecord) -> Effective:
        own = await self.store.get(package_id=package.id)
        if own is not None:
            return Effective(own, "package")
        inherited = await self.store.get(owner_id=package.owner_id)
        return Effective(inherited, "owner" if inherited else "none")

    async def _admin_package(
        self, principal: Principal, owner: str, owner_type: str | None, name: str
    ) -> PackageRecord:
        assert self.packages is not None
        return await self.packages.settings_target(principal, owner, owner_type, name)

    async def package_policy(
        self, principal: Principal, owner: str, owner_type: str | None, name: str
    ) -> Effective:
        """Anyone who sees the package sees the policy it follows."""
        assert self.packages is not None
        return await self.effective(await self.packages.get(principal, owner, owner_type, name))

    async def set_package_policy(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        name: str,
        policy: RetentionPolicy,
    ) -> Effective:
        cleaned, _ = validate(policy)
        package = await self._admin_package(principal, owner, owner_type, name)
        await self.store.put(cleaned, package_id=package.id)
        return await self.effective(package)

    async def clear_package_policy(
        self, principal: Principal, owner: str, owner_type: str | None, name: str
    ) -> Effective:
        """Drop the package's own policy: it follows its owner's again."""
        package = await self._admin_package(principal, owner, owner_type, name)
        await self.store.clear(package_id=package.id)
        return await self.effective(package)

    async def preview(
        self, principal: Principal, owner: str, owner_type: str | None, name: str
    ) -> list[Removal]:
        """What the cleanup would remove from the package now (package admins)."""
        package = await self._admin_package(principal, owner, owner_type, name)
        return await self._run(package, dry_run=True, actor=acting(principal))

    async def apply(
        self, principal: Principal, owner: str, owner_type: str | None, name: str
    ) -> list[Removal]:
        """Run the cleanup on the package now (package admins with the delete scope)."""
        package = await self._admin_package(principal, owner, owner_type, name)
        if principal.scopes is not None and Scope.DELETE_PACKAGES not in principal.scopes:
            raise ScopeMissing((Scope.DELETE_PACKAGES,), principal.scopes)
        return await self._run(package, dry_run=False, actor=acting(principal))

    # -- defaults of a user or organization -----------------------------------------------------

    async def _owner_admin(self, principal: Principal, login: str, owner_type: str | None) -> int:
        """The account, if the caller may manage its defaults: the user themself, an owner of
        the organization, a site administrator."""
        if principal.anonymous:
            raise Unauthenticated("Requires authentication")
        if principal.kind is not Kind.USER or principal.user_id is None:
            raise Forbidden("Resource not accessible by integration")
        account: Account | None = await self.accounts.by_login(login.lower())
        if account is None or (owner_type is not None and account.type != owner_type):
            raise NotFound("Not Found")
        if principal.site_admin or account.id == principal.user_id:
            return account.id
        if account.is_org:
            role = await self.accounts.org_role(account.id, principal.user_id)
            if role is None:
                raise NotFound("Not Found")
            if role == "owner":
                return account.id
            raise Forbidden("You must be an owner of the organization.")
        raise Forbidden("You can only manage your own retention policy.")

    def _scopes(self, principal: Principal, write: bool) -> None:
        needed = Scope.WRITE_PACKAGES if write else Scope.READ_PACKAGES
        granted = set(principal.scopes or ())
        if Scope.WRITE_PACKAGES in granted:
            granted.add(Scope.READ_PACKAGES)
        if principal.scopes is not None and needed not in granted:
            raise ScopeMissing((needed,), principal.scopes)

    async def owner_policy(
        self, principal: Principal, login: str, owner_type: str | None
    ) -> RetentionPolicy | None:
        owner_id = await self._owner_admin(principal, login, owner_type)
        self._scopes(principal, write=False)
        return await self.store.get(owner_id=owner_id)

    async def set_owner_policy(
        self, principal: Principal, login: str, owner_type: str | None, policy: RetentionPolicy
    ) -> RetentionPolicy:
        cleaned, _ = validate(policy)
        owner_id = await self._owner_admin(principal, login, owner_type)
        self._scopes(principal, write=True)
        await self.store.put(cleaned, owner_id=owner_id)
        return cleaned

    async def clear_owner_policy(
        self, principal: Principal, login: str, owner_type: str | None
    ) -> bool:
        owner_id = await self._owner_admin(principal, login, owner_type)
        self._scopes(principal, write=True)
        return await self.store.clear(owner_id=owner_id)

    # -- the cleanup ----------------------------------------------------------------------------

    async def _run(self, package: PackageRecord, *, dry_run: bool, actor: Actor) -> list[Removal]:
        found = await self.effective(package)
        if found.policy is None:
            return []
        policy, matches = validate(found.policy)
        protected = self.protected_downloads if package.visibility == Visibility.PUBLIC else None
        at = self.clock()
        planned = await self.store.preview(package.id, policy, matches, protected, at)
        if dry_run or not planned:
            # Nothing to remove: no write transaction (SQLite would serialize pushes behind it).
            return planned

        def events(removed: Sequence[Removal]) -> list[Event]:
            return [
                Event(
                    Action.VERSION_DELETED,
                    actor,
                    owner_id=package.owner_id,
                    package_id=package.id,
                    package=package.name,
                    version_id=r.id,
                    digest=r.digest,
                    data={"retention": True, "reason": r.reason, "tags": list(r.tags)},
                )
                for r in removed
            ]

        made: list[Event] = []

        def collect(removed: Sequence[Removal]) -> list[Event]:
            made.extend(events(removed))
            return made

        removed = await self.store.apply(package.id, policy, matches, protected, at, collect)
        await self.events.dispatch(made)
        if removed:
            log.info("retention removed %d versions of %s", len(removed), package.name)
        return removed

    async def run(self, *, dry_run: bool = False, name: str | None = None) -> RetentionReport:
        """The cleanup of every package that follows a policy (or of package ``name``): the
        periodic job and ``cargobay retention apply``. One package failing doesn't stop the
        others."""
        report = RetentionReport(dry_run)
        if name is not None:
            package = await self.records.get(name)
            if package is None:
                raise NotFound(f"no package {name!r}")
            ids = [package.id]
        else:
            ids = await self.store.governed()
        for package_id in ids:
            package = await self.records.by_id(package_id)
            if package is None or package.deleted_at is not None:
                continue
            report.packages += 1
            try:
                removed = await self._run(package, dry_run=dry_run, actor=Actor())
            except Exception as exc:  # one package's trouble must not stop the others
                log.warning("retention of %s failed", package.name, exc_info=True)
                report.failed[package.name] = str(exc)
                continue
            if removed:
                report.removed[package.name] = removed
        return report

    async def run_job(self) -> None:
        await self.run()

    # -- the operator (``cargobay retention``) --------------------------------------------------

    async def _target(self, name: str) -> tuple[int | None, int | None]:
        """``OWNER/PACKAGE`` (a package) or ``OWNER`` (a user's or organization's default)."""
        if "/" in name:
            package = await self.records.get(name)
            if package is None:
                raise NotFound(f"no package {name!r}")
            return None, package.id
        account = await self.accounts.by_login(name.lower())
        if account is None:
            raise NotFound(f"no user or organization {name!r}")
        return account.id, None

    async def operator_get(self, name: str) -> Effective:
        owner_id, package_id = await self._target(name)
        if package_id is not None:
            package = await self.records.by_id(package_id)
            assert package is not None
            return await self.effective(package)
        policy = await self.store.get(owner_id=owner_id)
        return Effective(policy, "owner" if policy else "none")

    async def operator_set(self, name: str, policy: RetentionPolicy) -> Effective:
        cleaned, _ = validate(policy)
        owner_id, package_id = await self._target(name)
        await self.store.put(cleaned, owner_id=owner_id, package_id=package_id)
        return await self.operator_get(name)

    async def operator_clear(self, name: str) -> Effective:
        owner_id, package_id = await self._target(name)
        await self.store.clear(owner_id=owner_id, package_id=package_id)
        return await self.operator_get(name)
