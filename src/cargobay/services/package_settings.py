"""A package's settings, changed by its admins: visibility, inheriting access from the linked
source repository, grants to users, teams and repositories, and the repository link itself."""

from __future__ import annotations

from typing import Any

from cargobay.auth.policy import Visibility
from cargobay.auth.principal import Principal
from cargobay.errors import Conflict, NotFound
from cargobay.ports.packages import Grant, PackageRecord
from cargobay.services.events import Action
from cargobay.services.package_core import WRITE, Forbidden, PackageCore


class PackageSettings(PackageCore):
    async def settings_target(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> PackageRecord:
        """The package, if ``principal`` may change its settings (admin, write scope)."""
        return await self._settings_target(principal, owner, owner_type, package_name)

    async def _settings_target(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> PackageRecord:
        self._require(principal, WRITE)
        package = await self.get(principal, owner, owner_type, package_name)
        await self._admin(principal, package)
        return package

    async def update(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        *,
        visibility: str | None = None,
        inherit_access: bool | None = None,
    ) -> PackageRecord:
        package = await self._settings_target(principal, owner, owner_type, package_name)
        values: dict[str, Any] = {}
        if visibility is not None and visibility != package.visibility:
            if package.visibility == Visibility.PUBLIC:
                raise Conflict("A public package cannot be made private or internal again.")
            account = await self.accounts.by_id(package.owner_id)
            if (
                account is not None
                and account.is_org
                and visibility not in account.package_visibilities
            ):
                raise Forbidden(f"The organization does not allow {visibility} packages.")
            if visibility == Visibility.INTERNAL and not (account and account.is_org):
                raise Conflict("Only organization packages can be internal.")
            values["visibility"] = visibility
        if inherit_access is not None:
            if inherit_access and package.source_repository_id is None:
                raise Conflict("Link a repository before inheriting its access.")
            values["inherit_access"] = inherit_access
        if values:
            events = []
            if "visibility" in values:
                events.append(
                    self._event(
                        Action.VISIBILITY_CHANGED,
                        principal,
                        package,
                        data={"visibility": values["visibility"], "before": package.visibility},
                    )
                )
            await self.store.update(package.id, events=events, **values)
            await self.events.dispatch(events)
        found = await self.store.by_id(package.id)
        assert found is not None
        return found

    async def grants(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> list[Grant]:
        package = await self._settings_target(principal, owner, owner_type, package_name)
        return await self.store.grants(package.id)

    async def grant(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        *,
        grantee_type: str,
        grantee: str,
        role: str | None,
    ) -> None:
        """Grant ``role`` (read, write, admin) to a user, a team (``slug`` of the owning org) or
        a repository (``owner/name``, 'Actions access'); ``role`` None revokes."""
        package = await self._settings_target(principal, owner, owner_type, package_name)
        grantee_id = await self._grantee_id(package, grantee_type, grantee)
        who: dict[str, object] = {
            "grantee_type": grantee_type,
            "grantee": grantee,
            "grantee_id": grantee_id,
        }
        if role is None:
            events = [self._event(Action.ACCESS_REVOKED, principal, package, data=who)]
            if not await self.store.revoke(package.id, grantee_type, grantee_id, events):
                raise NotFound("No such grant.")
            await self.events.dispatch(events)
            return
        if role not in ("read", "write", "admin"):
            raise Conflict(f"Invalid role {role!r}: use read, write or admin.")
        granted = self._event(Action.ACCESS_GRANTED, principal, package, data={**who, "role": role})
        events = [granted]
        await self.store.grant(package.id, grantee_type, grantee_id, role, events)
        await self.events.dispatch(events)

    async def _grantee_id(self, package: PackageRecord, grantee_type: str, grantee: str) -> int:
        if grantee_type == "user":
            account = await self.accounts.by_login(grantee.lower())
            if account is None or account.is_org:
                raise NotFound(f"No user named {grantee!r}.")
            return account.id
        if grantee_type == "team":
            team_id = await self.accounts.team_id(package.owner_id, grantee.lower())
            if team_id is None:
                raise NotFound(f"No team {grantee!r} in {package.owner_login}.")
            return team_id
        owner, _, name = grantee.partition("/")
        repository = await self.accounts.source_repository_by_name(owner.lower(), name.lower())
        if repository is None:
            raise NotFound(f"No repository named {grantee!r}.")
        return repository.id

    async def link(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        repository: str | None,
    ) -> PackageRecord:
        """Link the package to a repository of its owner (``name`` or ``owner/name``), or
        unlink it (None; inheriting access stops). Existing grants stay either way."""
        package = await self._settings_target(principal, owner, owner_type, package_name)
        if repository is None:
            await self.store.update(package.id, source_repository_id=None, inherit_access=False)
        else:
            repo_owner, _, name = repository.rpartition("/")
            repo_owner = repo_owner or package.owner_login
            if repo_owner.lower() != package.owner_login:
                raise Conflict("A package can only be linked to a repository of its owner.")
            found = await self.accounts.source_repository_by_name(repo_owner.lower(), name.lower())
            if found is None:
                raise NotFound(f"No repository named {repo_owner}/{name}.")
            await self.store.update(package.id, source_repository_id=found.id)
        result = await self.store.by_id(package.id)
        assert result is not None
        return result
