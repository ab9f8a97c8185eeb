"""Creating packages by pushing: who may create a package under a name, and creating it.

The rules are in ``docs/permissions.md`` ("Creating packages"): a user in their own namespace,
any member of an organization whose policy allows a visibility, and a workflow token with write
permission in its repository's owner's namespace.
"""

from __future__ import annotations

from cargobay.auth.access import Action
from cargobay.auth.policy import Visibility, scope_allows
from cargobay.auth.principal import Kind, Principal
from cargobay.ports.accounts import AccountStore, PackageAccessStore


class PackageCreation:
    def __init__(self, accounts: AccountStore, packages: PackageAccessStore) -> None:
        self.accounts = accounts
        self.packages = packages

    async def allowed(self, principal: Principal, name: str) -> bool:
        """Whether a push by ``principal`` may create the package ``name``."""
        if not scope_allows(principal.scopes, Action.PUSH):
            return False
        namespace = await self.accounts.by_login(name.split("/", 1)[0])
        if namespace is None:
            return False
        if principal.kind is Kind.USER and principal.user_id is not None:
            if principal.site_admin or namespace.id == principal.user_id:
                return True
            return (
                namespace.is_org
                and bool(namespace.package_visibilities)
                and await self.accounts.org_role(namespace.id, principal.user_id) is not None
            )
        if principal.kind is Kind.WORKFLOW and principal.workflow_permission == "write":
            assert principal.workflow_repository_id is not None
            source = await self.accounts.source_repository(principal.workflow_repository_id)
            return source is not None and source.owner_id == namespace.id
        return False

    async def create(self, principal: Principal, name: str) -> None:
        """Create ``name`` for its first push (the caller checked :meth:`allowed`): private
        unless the organization's policy excludes it; the creator is its admin."""
        namespace = await self.accounts.by_login(name.split("/", 1)[0])
        assert namespace is not None
        allowed = namespace.package_visibilities if namespace.is_org else frozenset()
        visibility = Visibility.PRIVATE.value
        for candidate in ("private", "internal", "public"):
            if not allowed or candidate in allowed:
                visibility = candidate
                break
        workflow_repository = principal.workflow_repository_id
        await self.packages.create(
            name,
            owner_id=namespace.id,
            visibility=visibility,
            # Inheriting starts when a source repository is linked on the first publish
            # (see PackageService.published), or when an admin turns it on.
            inherit_access=workflow_repository is not None,
            source_repository_id=workflow_repository,
            published_by_repository_id=workflow_repository,
            admin_user_id=principal.user_id,
        )
