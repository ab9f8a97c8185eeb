"""Pages that show things: sign-in, an owner's packages, a package, its versions, a version."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cargobay.auth.policy import Role
from cargobay.auth.secrets import same_secret
from cargobay.errors import CargobayError, NotFound, TooManyRequests, Unavailable
from cargobay.oci import jsondoc
from cargobay.oci import mediatypes as mt
from cargobay.oci.names import RepositoryName
from cargobay.oci.numbers import parse_id, parse_unsigned
from cargobay.ports.packages import PackageRecord, VersionRecord
from cargobay.services.package_core import Page
from cargobay.web.app import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Web, page, web_of
from cargobay.web.usage import namespace_usage, package_usage

OWNER_TYPES = {"orgs": "Organization", "users": "User"}
VERSION_FILTERS = ("all", "tagged", "untagged", "deleted")


def local_path(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@page
async def home(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is not None:
        return RedirectResponse(f"/users/{session.principal.login}/packages", status_code=303)
    return web.render(request, "home.html", {})


@page
async def login_form(request: Request, web: Web) -> Response:
    token = web.new_login_csrf()
    response = web.render(
        request,
        "login.html",
        {"login_csrf": token, "next": local_path(request.query_params.get("next")), "error": None},
    )
    web.set_cookie(response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


async def login(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    target = local_path(fields.get("next"))
    error: str | None = None
    status = 401
    if not cookie or not same_secret(cookie, fields.get("csrf", "")):
        error, status = "The form expired. Please try again.", 403
    else:
        client = request.client.host if request.client else ""
        try:
            secret, _ = await web.signin.sign_in(
                fields.get("login", ""), fields.get("password", ""), client
            )
        except Unavailable as exc:
            return web.error_page(request, exc)
        except TooManyRequests as exc:
            error, status = exc.message, 429
        except CargobayError as exc:
            error = exc.message
        else:
            signed_in = RedirectResponse(target, status_code=303)
            web.set_cookie(signed_in, SESSION_COOKIE, secret, None)
            signed_in.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
            return signed_in
    request.scope["cargobay.session"] = None
    token = web.new_login_csrf()
    response = web.render(
        request,
        "login.html",
        {"login_csrf": token, "next": target, "error": error, "login": fields.get("login", "")},
        status,
    )
    web.set_cookie(response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


def _owner_type(request: Request) -> tuple[str, str]:
    kind = request.path_params["kind"]
    if kind not in OWNER_TYPES:
        raise NotFound("Not found")
    return request.path_params["owner"].lower(), OWNER_TYPES[kind]


@page
async def owner_redirect(request: Request, web: Web) -> Response:
    login = request.path_params["owner"].lower()
    account = await web.packages.accounts.by_login(login)
    if account is None:
        raise NotFound("Not found")
    kind = "orgs" if account.is_org else "users"
    return RedirectResponse(f"/{kind}/{account.login}/packages", status_code=303)


@page
async def packages_list(request: Request, web: Web) -> Response:
    owner, owner_type = _owner_type(request)
    viewer = await web.viewer(request)
    visibility = request.query_params.get("visibility") or None
    if visibility not in (None, "public", "private", "internal"):
        visibility = None
    query = request.query_params.get("q", "")[:100]
    raw_page = request.query_params.get("page", "1")
    number = max(1, parse_unsigned(raw_page, 2**31 - 1) or 1)
    found, total = await web.packages.list_packages(
        viewer, owner, owner_type, visibility=visibility, page=Page(number, 30), query=query
    )
    deleted = await web.packages.deleted(viewer, owner, owner_type) if not viewer.anonymous else []
    is_org_owner = False
    if owner_type == "Organization" and viewer.user_id is not None:
        account = await web.packages.accounts.by_login(owner)
        if account is not None:
            role = await web.packages.accounts.org_role(account.id, viewer.user_id)
            is_org_owner = role == "owner" or viewer.site_admin
    return web.render(
        request,
        "packages.html",
        {
            "owner": owner,
            "kind": request.path_params["kind"],
            "packages": found,
            "total": total,
            "page": number,
            "pages": max(1, (total + 29) // 30),
            "visibility": visibility or "",
            "query": query,
            "deleted": deleted,
            "is_org_owner": is_org_owner,
            **await namespace_usage(web, viewer, owner, owner_type),
        },
    )


async def _platforms(web: Web, package: PackageRecord, version: VersionRecord) -> list[str]:
    if version.kind != "index":
        return [version.platform] if version.platform else []
    children = await web.packages.children(package, version)
    return [
        c.platform
        for c in children
        if c.platform and not c.attestation and not c.platform.startswith("unknown/")
    ]


async def _referrers(web: Web, package: PackageRecord, version: VersionRecord) -> list[Any]:
    registry = web.services.registry
    return list(
        await registry.manifests.referrers(RepositoryName(package.name), version.digest, None)
    )


@page
async def package_page(request: Request, web: Web) -> Response:
    owner, owner_type = _owner_type(request)
    viewer = await web.viewer(request)
    name = request.path_params["name"].strip("/")
    try:
        package = await web.packages.get(viewer, owner, owner_type, name)
    except NotFound:
        # ``.../package/NAME/VERSION_ID``: a version page.
        base, _, last = name.rpartition("/")
        version_id = parse_id(last)
        if not base or version_id is None:
            raise
        package = await web.packages.get(viewer, owner, owner_type, base)
        return await _version_page(request, web, package, version_id)
    role = await web.packages.role(viewer, package)
    tab = request.query_params.get("tab", "")
    if tab == "versions":
        return await _versions_page(request, web, package, role)
    if tab == "settings":
        if role < Role.ADMIN:
            raise NotFound("Package not found.")
        from cargobay.web.forms import settings_page

        return await settings_page(request, web, package)
    tags = await web.packages.tags(package)
    recent, _ = await web.packages.store.versions(package.id, deleted=False, offset=0, limit=10)
    shown = next((v for t, v in tags if t == "latest"), None) or (tags[0][1] if tags else None)
    shown = shown or next((v for v in recent if not v.is_child), None)
    platforms = await _platforms(web, package, shown) if shown else []
    referrers = await _referrers(web, package, shown) if shown else []
    pull_tag = next((t for t, v in tags if v is shown), None)
    return web.render(
        request,
        "package.html",
        {
            "package": package,
            "kind": request.path_params["kind"],
            "tags": tags,
            "recent": [v for v in recent if not v.is_child],
            "shown": shown,
            "platforms": platforms,
            "referrers": referrers,
            "pull_ref": f":{pull_tag}" if pull_tag else (f"@{shown.digest}" if shown else ""),
            "is_admin": role >= Role.ADMIN,
            "html_url": web.packages.package_html_url(package),
            **await package_usage(web, viewer, owner, owner_type, package.package_name),
        },
    )


async def _versions_page(
    request: Request, web: Web, package: PackageRecord, role: Role
) -> Response:
    which = request.query_params.get("filter", "all")
    if which not in VERSION_FILTERS or (which == "deleted" and role < Role.ADMIN):
        which = "all"
    found, _ = await web.packages.store.versions(
        package.id, deleted=which == "deleted", offset=0, limit=1000
    )
    if which == "tagged":
        found = [v for v in found if v.tags]
    elif which == "untagged":
        found = [v for v in found if not v.tags]
    return web.render(
        request,
        "versions.html",
        {
            "package": package,
            "versions": found,
            "filter": which,
            "filters": VERSION_FILTERS if role >= Role.ADMIN else VERSION_FILTERS[:3],
            "is_admin": role >= Role.ADMIN,
            "html_url": web.packages.package_html_url(package),
        },
    )


async def _version_page(
    request: Request, web: Web, package: PackageRecord, version_id: int
) -> Response:
    version = await web.packages.store.version(package.id, version_id)
    if version is None or version.deleted_at is not None:
        raise NotFound("Package version not found.")
    registry = web.services.registry
    manifest = await registry.manifests.get(RepositoryName(package.name), version.digest)
    document = json.loads(manifest.content)
    layers = document.get("layers") or []
    config_labels: dict[str, str] = {}
    config_doc: dict[str, Any] = {}
    config = document.get("config") or {}
    if (
        config.get("mediaType") in (mt.OCI_CONFIG, mt.DOCKER_CONFIG)
        and config.get("size", 0) <= 1 << 20
    ):
        raw = b"".join([c async for c in registry.blobs.read(config["digest"], 0, config["size"])])
        try:
            config_doc = jsondoc.loads(raw)
            config_labels = (config_doc.get("config") or {}).get("Labels") or {}
        except ValueError:
            config_doc = {}
    children = await web.packages.children(package, version) if version.kind == "index" else []
    return web.render(
        request,
        "version.html",
        {
            "package": package,
            "version": version,
            "layers": layers,
            "config": config,
            "config_summary": {
                k: config_doc.get(k)
                for k in ("os", "architecture", "variant", "created")
                if config_doc.get(k)
            },
            "labels": config_labels,
            "annotations": document.get("annotations") or {},
            "children": children,
            "referrers": await _referrers(web, package, version),
            "html_url": web.packages.package_html_url(package),
        },
    )
