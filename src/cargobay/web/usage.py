"""Storage figures on the pages: a package's usage on its page, a namespace's (the packages the
viewer sees; the quota for those who administer it) on its package list and settings page."""

from __future__ import annotations

from typing import Any

from cargobay.auth.principal import Principal
from cargobay.errors import CargobayError
from cargobay.services.usage import UsageService
from cargobay.web.app import Web


def _usage(web: Web) -> UsageService:
    service: UsageService = web.services.usage
    return service


async def package_usage(
    web: Web, viewer: Principal, owner: str, owner_type: str | None, name: str
) -> dict[str, Any]:
    """The ``usage`` a package page shows (the caller already sees the package)."""
    return {"usage": await _usage(web).package(viewer, owner, owner_type, name)}


async def namespace_usage(
    web: Web, viewer: Principal, owner: str, owner_type: str | None
) -> dict[str, Any]:
    """The ``namespace_usage`` a package list or settings page shows (None if unavailable)."""
    try:
        return {"namespace_usage": await _usage(web).namespace(viewer, owner, owner_type)}
    except CargobayError:
        return {"namespace_usage": None}
