"""The retention policy form of a package's settings page, and its dry-run preview page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargobay.auth.policy import Role
from cargobay.errors import NotFound
from cargobay.oci.numbers import parse_id
from cargobay.ports.packages import PackageRecord
from cargobay.ports.retention import RetentionPolicy
from cargobay.services.accounts import InvalidInput
from cargobay.services.retention import Effective, RetentionService
from cargobay.services.signin import Session
from cargobay.web.app import Web, form_handler, page
from cargobay.web.forms import _back, _package


def service(web: Web) -> RetentionService:
    value: RetentionService = web.services.retention
    return value


async def context(web: Web, package: PackageRecord) -> Effective:
    """What the settings page shows of the policy (the page's viewer is the package's admin)."""
    return await service(web).effective(package)


def _number(form: dict[str, str], key: str) -> int | None:
    text = form.get(key, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 6:
        raise InvalidInput(f"{key.replace('_', ' ')}: a whole number of at most 6 digits")
    return int(text)


def policy_of(form: dict[str, str]) -> RetentionPolicy:
    """The rules the retention form's fields say (empty fields: off)."""
    return RetentionPolicy(
        untagged_days=_number(form, "untagged_days"),
        keep_tags=_number(form, "keep_tags"),
        tag_patterns=tuple(form.get("tag_patterns", "").replace(",", " ").split()),
        pulled_days=_number(form, "pulled_days"),
    )


@form_handler
async def set_retention(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    """``inherit=on`` drops the package's own policy; else the rules (empty fields: off)."""
    package = await _package(web, session, request)
    args = (session.principal, package.owner_login, package.owner_type, package.package_name)
    if form.get("inherit") == "on":
        await service(web).clear_package_policy(*args)
        return _back(package, web, "retention policy removed")
    await service(web).set_package_policy(*args, policy_of(form))
    return _back(package, web, "retention policy saved")


@page
async def preview(request: Request, web: Web) -> Response:
    """What the cleanup would remove now: package admins only (others: Not found)."""
    viewer = await web.viewer(request)
    package_id = parse_id(request.path_params["package_id"])
    package = await web.packages.store.by_id(package_id) if package_id else None
    if package is None or package.deleted_at is not None:
        raise NotFound("Package not found.")
    if viewer.anonymous or await web.packages.role(viewer, package) < Role.ADMIN:
        raise NotFound("Package not found.")
    removals = await service(web).preview(
        viewer, package.owner_login, package.owner_type, package.package_name
    )
    return web.render(
        request,
        "retention_preview.html",
        {
            "package": package,
            "removals": removals,
            "retention": await context(web, package),
            "is_admin": True,
            "html_url": web.packages.package_html_url(package),
        },
    )
