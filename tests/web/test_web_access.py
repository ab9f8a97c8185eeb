"""Who sees what, over plain HTTP (no browser): invisible packages are exactly "Not found",
admin pages need admin, every form needs a session and its CSRF token, sign-ins are limited,
the session cookie and the Content-Security-Policy are strict.

``corp`` (owner olga) has three private packages: ``secret`` (nobody else), ``shared`` (team
``corp/readers``, with rita, may read it) and ``old`` (deleted). mallory is signed in with no
relation to any of it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kit import Operator
from webui import Layout, Skopeo, WebSession, hidden_field, metadata

ORG = "corp"
PASSWORDS = {
    "olga": "olga-pass-1",
    "rita": "rita-pass-2",
    "mallory": "mallory-pass-3",
    "victim": "victim-pass-4",
}
#: Failed sign-ins allowed per client address and user name on this module's server.
FAILURES = 3


@pytest.fixture(scope="module")
def server(server_factory: Any) -> Iterator[Any]:
    started = server_factory(sign_in_failures=FAILURES, sign_in_window=300)
    yield started
    started.stop()


def page_path(name: str, suffix: str = "") -> str:
    return f"/orgs/{ORG}/packages/container/package/{name}{suffix}"


@dataclass
class World:
    server: Any
    package_ids: dict[str, int]
    version_ids: dict[str, list[int]]
    deleted_version_id: int
    token_id: int
    #: Signed-in sessions by login; ``None``: an anonymous one.
    sessions: dict[str | None, WebSession]

    def session(self, login: str | None) -> WebSession:
        return self.sessions[login]


def _ids(pattern: str, html: str) -> list[int]:
    return [int(m) for m in re.findall(pattern, html)]


@pytest.fixture(scope="module")
def world(server: Any, skopeo: Skopeo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    setup = Operator()
    for login, password in PASSWORDS.items():
        setup.user(login, password)
    setup.add("org", "create", ORG, "--owner", "olga")
    setup.add("org", "add-member", ORG, "rita")
    setup.add("team", "create", ORG, "readers")
    setup.add("team", "add-member", ORG, "readers", "rita")
    setup.add("token", "create", "--user", "olga", "--scopes", "write:packages", "--note", "cli")
    token = setup.run(server)[-1]
    layout = Layout(tmp_path_factory.mktemp("access") / "layout")
    for name in ("secret", "shared", "old"):
        for tag in ("1.0", "2.0"):
            image = layout.image("amd64", annotations=metadata(f"the {name}", "MIT", ""))
            layout.tag(f"{name}-{tag}", image)

    def push(name: str) -> None:
        for tag in ("1.0", "2.0"):
            skopeo.push(layout, f"{name}-{tag}", f"{ORG}/{name}", ("olga", token), tag=tag)

    with ThreadPoolExecutor(3) as pool:  # one package each: skopeo runs take a while
        list(pool.map(push, ("secret", "shared", "old")))

    sessions: dict[str | None, WebSession] = {
        who: WebSession(server.url) for who in ("olga", "rita", "mallory", None)
    }
    for who, session in sessions.items():
        if who is not None:
            assert session.sign_in(who, PASSWORDS[who]).status_code == 303
    olga = sessions["olga"]
    package_ids: dict[str, int] = {}
    version_ids: dict[str, list[int]] = {}
    for name in ("secret", "shared", "old"):
        html = olga.get(page_path(name, "?tab=versions")).text
        version_ids[name] = _ids(r"/packages/\d+/versions/(\d+)/delete", html)
        package_ids[name] = _ids(r"/packages/(\d+)/versions/", html)[0]
    assert all(len(v) == 2 for v in version_ids.values()), version_ids
    granted = olga.post(
        f"/packages/{package_ids['shared']}/access",
        {"csrf": olga.csrf, "grantee_type": "team", "grantee": "readers", "role": "read"},
    )
    assert granted.status_code == 303, granted.text
    # A deleted version of ``secret`` and the deleted package ``old``, through the forms.
    deleted_version = version_ids["secret"][0]
    done = olga.post(
        f"/packages/{package_ids['secret']}/versions/{deleted_version}/delete",
        {"csrf": olga.csrf},
    )
    assert done.status_code == 303, done.text
    done = olga.post(
        f"/packages/{package_ids['old']}/delete", {"csrf": olga.csrf, "confirm": "old"}
    )
    assert done.status_code == 303, done.text
    token_ids = _ids(r"/settings/tokens/(\d+)/revoke", olga.get("/settings/tokens").text)
    assert len(token_ids) == 1
    yield World(server, package_ids, version_ids, deleted_version, token_ids[0], sessions)
    for session in sessions.values():
        session.close()


def _body(resp: httpx.Response) -> str:
    """The page, less the one thing that names the URL asked for (the sign-in link's
    ``next``)."""
    path = resp.request.url.path
    return resp.text.replace(quote(path, safe=""), "PATH").replace(path, "PATH")


# -- invisible is exactly "not found" -------------------------------------------------------------


@pytest.mark.parametrize("viewer", ["mallory", "rita", None], ids=["outsider", "reader", "anon"])
@pytest.mark.parametrize(
    "suffix", ["", "?tab=versions", "?tab=settings", "?tab=versions&filter=deleted", "/1"]
)
def test_a_private_package_is_exactly_not_found(
    world: World, viewer: str | None, suffix: str
) -> None:
    session = world.session(viewer)
    if suffix == "/1":
        suffix = f"/{world.version_ids['secret'][1]}"
    hidden = session.get(page_path("secret", suffix))
    missing = session.get(page_path("no-such-package", suffix))
    assert hidden.status_code == 404, hidden.text
    assert missing.status_code == 404
    assert _body(hidden) == _body(missing)
    assert "the secret" not in hidden.text


@pytest.mark.parametrize("viewer", ["mallory", None], ids=["outsider", "anon"])
def test_a_deleted_package_is_not_found(world: World, viewer: str | None) -> None:
    session = world.session(viewer)
    gone = session.get(page_path("old"))
    assert gone.status_code == 404
    assert _body(gone) == _body(session.get(page_path("no-such-package")))
    owner_view = world.session("olga").get(page_path("old"))
    assert owner_view.status_code == 404


def test_a_version_of_another_package_is_not_found(world: World) -> None:
    """rita reads ``shared``; ``shared/<a version id of secret>`` must not show it."""
    rita = world.session("rita")
    assert rita.get(page_path("shared")).status_code == 200
    for version_id in world.version_ids["secret"]:
        crossed = rita.get(page_path("shared", f"/{version_id}"))
        assert crossed.status_code == 404
        assert "the secret" not in crossed.text


def test_a_reader_sees_the_package_but_no_settings(world: World) -> None:
    rita = world.session("rita")
    shown = rita.get(page_path("shared"))
    assert shown.status_code == 200
    assert "the shared" in shown.text
    assert "?tab=settings" not in shown.text
    settings = rita.get(page_path("shared", "?tab=settings"))
    assert settings.status_code == 404
    assert _body(settings) == _body(rita.get(page_path("no-such-package", "?tab=settings")))
    versions = rita.get(page_path("shared", "?tab=versions&filter=deleted"))
    assert versions.status_code == 200
    assert 'aria-current="page">All<' in versions.text
    assert "filter=deleted" not in versions.text
    assert "/delete" not in versions.text and "/restore" not in versions.text


def test_package_lists_show_only_what_the_viewer_may_read(world: World) -> None:
    def names(login: str | None, query: str = "") -> list[str]:
        html = world.session(login).get(f"/orgs/{ORG}/packages{query}").text
        return re.findall(r'<a class="name" href="[^"]*">([^<]+)</a>', html)

    assert sorted(names("olga")) == ["secret", "shared"]
    assert names("olga", "?q=sec") == ["secret"]
    assert names("olga", "?visibility=public") == []
    assert names("rita") == ["shared"]
    assert names("mallory") == []
    assert names(None) == []
    olga_list = world.session("olga").get(f"/orgs/{ORG}/packages").text
    assert "Recently deleted" in olga_list and "Restore old" in olga_list
    for other in ("rita", "mallory", None):
        assert "Restore old" not in world.session(other).get(f"/orgs/{ORG}/packages").text


@pytest.mark.parametrize("viewer", ["rita", "mallory", None], ids=["member", "outsider", "anon"])
def test_org_package_settings_are_for_owners_only(world: World, viewer: str | None) -> None:
    assert world.session("olga").get(f"/orgs/{ORG}/settings/packages").status_code == 200
    refused = world.session(viewer).get(f"/orgs/{ORG}/settings/packages")
    assert refused.status_code == 404


# -- forms: a session and its CSRF token, or nothing happens --------------------------------------


def _forms(world: World) -> list[tuple[str, dict[str, str]]]:
    """Every form the pages post, with values that would change something."""
    secret = world.package_ids["secret"]
    live_version = world.version_ids["secret"][1]
    return [
        ("/logout", {}),
        ("/settings/tokens", {"scopes": "read:packages", "note": "forged"}),
        (f"/settings/tokens/{world.token_id}/revoke", {}),
        (f"/orgs/{ORG}/settings/packages", {"visibilities": "public"}),
        (f"/packages/{secret}/visibility", {"visibility": "public", "confirm": "secret"}),
        (f"/packages/{secret}/inherit", {"inherit": "on"}),
        (
            f"/packages/{secret}/access",
            {"grantee_type": "user", "grantee": "mallory", "role": "admin"},
        ),
        (f"/packages/{secret}/repository", {"repository": ""}),
        (f"/packages/{secret}/delete", {"confirm": "secret"}),
        (f"/packages/{world.package_ids['old']}/restore", {}),
        (f"/packages/{secret}/versions/{live_version}/delete", {}),
        (f"/packages/{secret}/versions/{world.deleted_version_id}/restore", {}),
    ]


def _snapshot(world: World) -> dict[str, str]:
    """What olga's pages say about everything the forms could change."""
    olga = world.session("olga")
    paths = [
        page_path("secret", "?tab=settings"),
        page_path("secret", "?tab=versions"),
        page_path("secret", "?tab=versions&filter=deleted"),
        f"/orgs/{ORG}/packages",
        f"/orgs/{ORG}/settings/packages",
        "/settings/tokens",
    ]
    found = {}
    for path in paths:
        resp = olga.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        found[path] = resp.text
    return found


def test_every_form_without_a_session_goes_to_sign_in(world: World) -> None:
    before = _snapshot(world)
    for cookies in ({}, {"cargobay_session": secrets.token_urlsafe(32)}):
        anonymous = httpx.Client(base_url=world.server.url, cookies=cookies)
        for path, data in _forms(world):
            resp = anonymous.post(path, data={**data, "csrf": world.session("olga").csrf})
            assert resp.status_code == 303, (path, resp.status_code, resp.text[:300])
            assert resp.headers["location"].startswith("/login"), (path, resp.headers)
        anonymous.close()
    assert _snapshot(world) == before


@pytest.mark.parametrize("csrf", ["missing", "empty", "wrong", "another user's"])
def test_every_form_without_its_csrf_token_is_refused(world: World, csrf: str) -> None:
    olga = world.session("olga")
    values = {
        "empty": "",
        "wrong": secrets.token_urlsafe(32),
        "another user's": world.session("mallory").csrf,
    }
    before = _snapshot(world)
    for path, data in _forms(world):
        sent = {**data, "csrf": values[csrf]} if csrf in values else dict(data)
        resp = olga.post(path, sent)
        assert resp.status_code == 403, (path, resp.status_code, resp.text[:300])
        assert "expired" in resp.text
    assert _snapshot(world) == before


def test_sign_in_form_needs_its_own_csrf_token(world: World) -> None:
    client = httpx.Client(base_url=world.server.url)
    resp = client.post(
        "/login", data={"login": "olga", "password": PASSWORDS["olga"], "csrf": "forged"}
    )
    assert resp.status_code == 403
    assert "cargobay_session" not in resp.cookies
    client.close()


@pytest.mark.parametrize("package", ["secret", "no-such"])
def test_forms_on_an_invisible_package_are_not_found(world: World, package: str) -> None:
    """mallory (a valid session and CSRF token) posts to ``secret``'s forms: the answers are
    those for a package id that does not exist, and nothing changes."""
    mallory = world.session("mallory")
    before = _snapshot(world)
    secret = world.package_ids["secret"]
    package_id = secret if package == "secret" else 987654
    different = []
    for path, data in _forms(world):
        if not path.startswith(f"/packages/{secret}/"):
            continue
        path = path.replace(f"/packages/{secret}/", f"/packages/{package_id}/")
        for confirm in ("secret", "wrong-name") if "confirm" in data else ("",):
            sent = {**data, "csrf": mallory.csrf, **({"confirm": confirm} if confirm else {})}
            resp = mallory.post(path, sent)
            missing = mallory.post(path.replace(f"/{package_id}/", "/987654/"), sent)
            if resp.status_code != 404 or resp.text != missing.text:
                message = re.search(r'role="alert">([^<]*)<', resp.text)
                shown = message.group(1) if message else resp.text[:200]
                different.append(f"POST {path} confirm={confirm!r}: {resp.status_code} {shown}")
    assert different == []
    assert _snapshot(world) == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", page_path("shared", "/" + "9" * 25)),
        ("POST", "/packages/" + "9" * 25 + "/visibility"),
        ("POST", "/packages/" + "9" * 25 + "/delete"),
        ("POST", "/packages/" + "9" * 25 + "/restore"),
        ("POST", "/settings/tokens/" + "9" * 25 + "/revoke"),
    ],
    ids=["version page", "visibility", "delete", "restore", "revoke"],
)
def test_ids_too_large_for_the_database_are_not_found(world: World, method: str, path: str) -> None:
    olga = world.session("olga")
    data = {"csrf": olga.csrf, "confirm": "shared", "visibility": "public"}
    resp = olga.get(path) if method == "GET" else olga.post(path, data)
    assert resp.status_code == 404, (resp.status_code, resp.text[:300])


# -- sessions, sign-in limits, headers -----------------------------------------------------------


def test_signing_in_returns_to_the_new_token_page_with_its_whole_query(world: World) -> None:
    """A "create a token" link (``?scopes=...&description=...``) opened while signed out leads
    to the sign-in form and, once signed in, back to the same page, the note included."""
    wanted = "/settings/tokens/new?scopes=read:packages,write:packages&description=ci+push"
    client = httpx.Client(base_url=world.server.url)
    to_login = client.get(wanted)
    assert to_login.status_code == 303
    assert to_login.headers["location"].startswith("/login?")
    form = client.get(to_login.headers["location"])
    assert form.status_code == 200
    back_to = hidden_field(form.text, "next")
    csrf = hidden_field(form.text, "csrf")
    signed_in = client.post(
        "/login",
        data={"csrf": csrf, "next": back_to, "login": "rita", "password": PASSWORDS["rita"]},
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == wanted
    page = client.get(wanted).text
    assert 'value="ci push"' in page
    client.close()


def test_session_cookie_is_httponly_and_samesite_lax_and_sign_out_ends_it(world: World) -> None:
    session = WebSession(world.server.url)
    resp = session.sign_in("rita", PASSWORDS["rita"])
    assert resp.status_code == 303
    cookie = next(
        v for v in resp.headers.get_list("set-cookie") if v.startswith("cargobay_session=")
    )
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].split("=")[1].strip().lower() == "lax"
    assert attributes["path"].split("=")[1].strip() == "/"
    secret = session.http.cookies["cargobay_session"]
    assert session.get("/settings/tokens").status_code == 200
    out = session.post("/logout", {"csrf": session.csrf})
    assert out.status_code == 303
    # The old cookie is dead on the server, not just forgotten by the browser.
    replay = httpx.Client(base_url=world.server.url, cookies={"cargobay_session": secret})
    assert replay.get("/settings/tokens").status_code == 303
    assert replay.get(page_path("shared")).status_code == 404
    replay.close()
    session.close()


def test_failed_sign_ins_past_the_limit_get_429(world: World) -> None:
    """From another client address (127.0.0.2): the victim's name fails FAILURES times, then
    every further try is 429, the right password included. Other addresses and other users
    are not blocked by it."""
    attacker = WebSession(world.server.url, local_address="127.0.0.2")
    statuses = [attacker.sign_in("victim", "wrong").status_code for _ in range(FAILURES + 2)]
    assert statuses == [401] * FAILURES + [429] * 2
    blocked = attacker.sign_in("victim", PASSWORDS["victim"])
    assert blocked.status_code == 429
    assert "cargobay_session" not in blocked.cookies
    assert "Too many" in blocked.text
    attacker.close()
    other = WebSession(world.server.url)
    assert other.sign_in("mallory", PASSWORDS["mallory"]).status_code == 303
    other.close()


PAGES = [
    "/",
    "/login",
    f"/orgs/{ORG}/packages",
    page_path("secret"),
    page_path("secret", "?tab=versions"),
    page_path("secret", "?tab=settings"),
    f"/orgs/{ORG}/settings/packages",
    "/settings/tokens",
    "/settings/tokens/new?scopes=write:packages",
    page_path("no-such-package"),
    "/static/copy.js",
]


def test_pages_carry_a_strict_content_security_policy(world: World) -> None:
    olga = world.session("olga")
    responses = [olga.get(p) for p in PAGES]
    responses.append(olga.post("/logout", {"csrf": "wrong"}))  # an error page (403)
    for resp in responses:
        where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
        policy = resp.headers.get("content-security-policy")
        assert policy, where
        directives = {
            d.strip().split()[0]: d.strip().split()[1:] for d in policy.split(";") if d.strip()
        }
        scripts = directives.get("script-src") or directives["default-src"]
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, where
        assert directives.get("object-src") == ["'none'"], where
        assert directives.get("frame-ancestors") == ["'none'"], where
        assert resp.headers.get("x-content-type-options") == "nosniff", where
        if resp.headers.get("content-type", "").startswith("text/html"):
            html = resp.text
            # Nothing a strict policy would block: no inline scripts, handlers or styles.
            assert not re.search(r"<script(?![^>]*\ssrc=)", html), where
            assert not re.search(r"\son[a-z]+\s*=", html), where
            assert not re.search(r"\sstyle\s*=", html), where
            assert "<style" not in html, where
