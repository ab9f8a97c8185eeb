"""Pages and forms that change things: package settings, tokens, organization settings,
signing out. Every POST carries the session's CSRF token (see :func:`form_handler`)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cargobay.auth.policy import Role, Scope
from cargobay.errors import Conflict, NotFound
from cargobay.oci.numbers import parse_id
from cargobay.ports.packages import PackageRecord
from cargobay.services.administration import Administration
from cargobay.services.signin import Session
from cargobay.web.app import SESSION_COOKIE, Web, form_handler, page
from cargobay.web.usage import namespace_usage

SCOPES = [s.value for s in Scope]
EXPIRIES = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "": "No expiration"}


def _version_id(request: Request) -> int:
    value = parse_id(request.path_params["version_id"])
    if value is None:
        raise NotFound("Package version not found.")
    return value


def _admin(web: Web) -> Administration:
    value: Administration = web.services.administration
    return value


async def settings_page(request: Request, web: Web, package: PackageRecord) -> Response:
    viewer = await web.viewer(request)
    grants = await web.packages.grants(
        viewer, package.owner_login, package.owner_type, package.package_name
    )
    deleted, _ = await web.packages.store.versions(package.id, deleted=True, offset=0, limit=100)
    account = await web.packages.accounts.by_id(package.owner_id)
    allowed = (
        sorted(account.package_visibilities)
        if account and account.is_org
        else ["private", "public"]
    )
    return web.render(
        request,
        "settings.html",
        {
            "package": package,
            "grants": grants,
            "deleted_versions": deleted,
            "visibilities": allowed,
            "immutable_patterns": await web.services.immutability.patterns(
                viewer, package.owner_login, package.owner_type, package.package_name
            ),
            "html_url": web.packages.package_html_url(package),
            "message": request.query_params.get("done", "")[:200],
            "retention": await web.services.retention.effective(package),
        },
    )


async def _package(
    web: Web, session: Session, request: Request, *, deleted: bool = False
) -> PackageRecord:
    """The package a form acts on; Not found unless the signed-in user is its admin (so forms
    reveal nothing about packages others can't manage)."""
    package_id = parse_id(request.path_params["package_id"])
    package = await web.packages.store.by_id(package_id) if package_id else None
    if package is None or (package.deleted_at is not None) != deleted:
        raise NotFound("Package not found.")
    if await web.packages.role(session.principal, package) < Role.ADMIN:
        raise NotFound("Package not found.")
    return package


def _back(package: PackageRecord, web: Web, done: str, tab: str = "settings") -> Response:
    url = web.packages.package_html_url(package)
    return RedirectResponse(f"{url}?tab={tab}&done={done}", status_code=303)


@form_handler
async def logout(request: Request, web: Web, session: Session, form: dict[str, str]) -> Response:
    await web.signin.sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@form_handler
async def change_visibility(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    package = await _package(web, session, request)
    if form.get("confirm", "").strip() != package.package_name:
        raise Conflict("Type the package's name to confirm the change of visibility.")
    await web.packages.update(
        session.principal,
        package.owner_login,
        package.owner_type,
        package.package_name,
        visibility=form.get("visibility"),
    )
    return _back(package, web, "visibility changed")


@form_handler
async def change_inherit(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    package = await _package(web, session, request)
    await web.packages.update(
        session.principal,
        package.owner_login,
        package.owner_type,
        package.package_name,
        inherit_access=form.get("inherit") == "on",
    )
    return _back(package, web, "access inheritance changed")


@form_handler
async def grant(request: Request, web: Web, session: Session, form: dict[str, str]) -> Response:
    package = await _package(web, session, request)
    grantee_type = form.get("grantee_type", "")
    if grantee_type not in ("user", "team", "source_repository"):
        raise Conflict("Choose a user, a team or a repository.")
    role = form.get("role") or None
    await web.packages.grant(
        session.principal,
        package.owner_login,
        package.owner_type,
        package.package_name,
        grantee_type=grantee_type,
        grantee=form.get("grantee", "").strip(),
        role=role,
    )
    return _back(package, web, "access updated" if role else "access removed")


@form_handler
async def link(request: Request, web: Web, session: Session, form: dict[str, str]) -> Response:
    package = await _package(web, session, request)
    repository = form.get("repository", "").strip() or None
    await web.packages.link(
        session.principal,
        package.owner_login,
        package.owner_type,
        package.package_name,
        repository,
    )
    return _back(package, web, "repository linked" if repository else "repository unlinked")


@form_handler
async def delete_package(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    package = await _package(web, session, request)
    if form.get("confirm", "").strip() != package.package_name:
        raise Conflict("Type the package's name to confirm its deletion.")
    await web.packages.delete(
        session.principal, package.owner_login, package.owner_type, package.package_name
    )
    return RedirectResponse(package.owner_path, status_code=303)


@form_handler
async def restore_package(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    package = await _package(web, session, request, deleted=True)
    await web.packages.restore(
        session.principal, package.owner_login, package.owner_type, package.package_name
    )
    return RedirectResponse(web.packages.package_html_url(package), status_code=303)


@form_handler
async def delete_version(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    package = await _package(web, session, request)
    await web.packages.delete_version(
        session.principal,
        package.owner_login,
        package.owner_type,
        package.package_name,
        _version_id(request),
    )
    return _back(package, web, "version deleted", "versions")


@form_handler
async def restore_version(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    package = await _package(web, session, request)
    await web.packages.restore_version(
        session.principal,
        package.owner_login,
        package.owner_type,
        package.package_name,
        _version_id(request),
    )
    tab = "versions" if form.get("back") == "versions" else "settings"
    return _back(package, web, "version restored", tab)


# -- personal access tokens -----------------------------------------------------------------


@page
async def tokens_page(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    tokens = await _admin(web).tokens(session.principal)
    return web.render(request, "tokens.html", {"tokens": tokens})


@page
async def new_token_page(request: Request, web: Web) -> Response:
    session = await web.session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    wanted = {s.strip() for s in request.query_params.get("scopes", "").split(",")}
    return web.render(
        request,
        "token_new.html",
        {
            "scopes": SCOPES,
            "selected": wanted & set(SCOPES),
            "expiries": EXPIRIES,
            "note": request.query_params.get("description", "")[:255],
        },
    )


@form_handler
async def create_token(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    raw = await request.form()
    scopes = [v for v in raw.getlist("scopes") if isinstance(v, str) and v in SCOPES]
    if not scopes:
        raise Conflict("Select at least one scope.")
    expires = form.get("expires", "")
    created = await _admin(web).create_token(
        session.principal,
        scopes,
        form.get("note", "").strip()[:255] or None,
        expires if expires in EXPIRIES and expires else None,
    )
    return web.render(
        request, "token_created.html", {"token": created.token, "record": created.record}
    )


@form_handler
async def revoke_token(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    token_id = parse_id(request.path_params["token_id"])
    if token_id is None:
        raise NotFound("no such token")
    await _admin(web).revoke_token(session.principal, token_id)
    return RedirectResponse("/settings/tokens", status_code=303)


# -- organization settings ------------------------------------------------------------------


async def _org_owner_or_404(web: Web, session: Session | None, org: str) -> None:
    if session is None:
        raise NotFound("Not found")
    account = await web.packages.accounts.by_login(org.lower())
    if account is None or not account.is_org:
        raise NotFound("Not found")
    role = await web.packages.accounts.org_role(account.id, session.principal.user_id or 0)
    if role != "owner" and not session.principal.site_admin:
        raise NotFound("Not found")


@page
async def org_settings_page(request: Request, web: Web) -> Response:
    org = request.path_params["org"].lower()
    await _org_owner_or_404(web, await web.session(request), org)
    account = await web.packages.accounts.by_login(org)
    assert account is not None
    return web.render(
        request,
        "org_settings.html",
        {
            "org": account,
            "message": request.query_params.get("done", "")[:100],
            **await namespace_usage(web, await web.viewer(request), org, "Organization"),
        },
    )


@form_handler
async def org_settings(
    request: Request, web: Web, session: Session, form: dict[str, str]
) -> Response:
    org = request.path_params["org"].lower()
    await _org_owner_or_404(web, session, org)
    raw = await request.form()
    chosen = [v for v in raw.getlist("visibilities") if v in ("public", "private", "internal")]
    await _admin(web).update_org(
        session.principal,
        org,
        visibilities=[str(v) for v in chosen],
        inherit=form.get("inherit") == "on",
    )
    return RedirectResponse(f"/orgs/{org}/settings/packages?done=saved", status_code=303)
