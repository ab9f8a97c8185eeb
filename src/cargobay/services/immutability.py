"""Immutable tag rules of a package: who may read and change them, and what a rule may be.
Enforcement is in the metadata transactions (:mod:`cargobay.metadata.immutability`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cargobay.auth.principal import Principal
from cargobay.errors import NotFound
from cargobay.ports.packages import ImmutableTagStore, PackageStore
from cargobay.services.accounts import InvalidInput
from cargobay.services.packages import PackageService

#: A glob over tag characters: ``*``, ``?`` and ``[...]`` as in shell patterns.
PATTERN = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]{1,128}$")
MAX_RULES = 50


def validate(patterns: Sequence[str]) -> list[str]:
    cleaned = sorted({p.strip() for p in patterns})
    if len(cleaned) > MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} immutable tag rules per package")
    for pattern in cleaned:
        if not PATTERN.fullmatch(pattern):
            raise InvalidInput(
                f"{pattern!r} is not a tag pattern: up to 128 characters of A-Z a-z 0-9 _ . -"
                " and the glob characters * ? [ ] !"
            )
    return cleaned


class ImmutableTagService:
    def __init__(
        self,
        packages: PackageService | None,
        records: PackageStore,
        rules: ImmutableTagStore,
    ) -> None:
        """``packages`` checks who may do what; the operator's commands go without it."""
        self.packages = packages
        self.records = records
        self.rules = rules

    async def patterns(
        self, principal: Principal, owner: str, owner_type: str | None, package_name: str
    ) -> list[str]:
        """Anyone who sees the package sees its rules."""
        assert self.packages is not None
        package = await self.packages.get(principal, owner, owner_type, package_name)
        return await self.rules.patterns(package.id)

    async def replace(
        self,
        principal: Principal,
        owner: str,
        owner_type: str | None,
        package_name: str,
        patterns: Sequence[str],
    ) -> list[str]:
        """Package admins set the rules (all of them at once; empty: none)."""
        cleaned = validate(patterns)
        assert self.packages is not None
        package = await self.packages.settings_target(principal, owner, owner_type, package_name)
        return await self.rules.replace(package.id, cleaned)

    # -- the operator (``cargobay immutable-tags``) ----------------------------------------------

    async def _package_id(self, name: str) -> int:
        package = await self.records.get(name)
        if package is None:
            raise NotFound(f"no package {name!r}")
        return package.id

    async def operator_patterns(self, name: str) -> list[str]:
        return await self.rules.patterns(await self._package_id(name))

    async def operator_change(
        self, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[str]:
        package_id = await self._package_id(name)
        current = set(await self.rules.patterns(package_id))
        wanted = validate([*(current - set(remove)), *add])
        return await self.rules.replace(package_id, wanted)
