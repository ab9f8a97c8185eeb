"""Who may read what through the REST API: every read endpoint (lists, a package, its versions,
one version) for every kind of caller, against a real server.

The world (one server for the module): organization ``acme`` owned by ``alice`` with plain
members ``bob`` and ``carol`` (``carol`` in team ``acme/readers``); repositories ``acme/app``
(``frank`` is a read collaborator) and ``acme/other``; user ``ursula`` with packages of her own.

- ``acme/secret``, private: pushed by ``acme/app``'s workflow (so linked to ``acme/app`` and
  inheriting its access); team ``acme/readers`` and user ``dave`` have read; of its two versions
  one is deleted.
- ``acme/inner``, internal, and ``acme/open``, public: pushed by alice.
- ``ursula/mine``, private, and ``ursula/shared``, public: pushed by ursula.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kit import Operator
from resttest import Pusher, Rest, describe, package_path

ORG = "acme"
PACKAGES = ("secret", "inner", "open")
VISIBILITY = {"secret": "private", "inner": "internal", "open": "public"}
READ = "read:packages"

#: actor -> the acme packages it may read (callers refused outright are in REFUSED)
READABLE: dict[str, set[str]] = {
    "tester": {"secret", "inner", "open"},  # site administrator
    "alice": {"secret", "inner", "open"},  # owner of acme
    "alice-write": {"secret", "inner", "open"},  # write:packages implies read:packages
    "bob": {"inner", "open"},  # plain member: internal yes, private no
    "carol": {"secret", "inner", "open"},  # team acme/readers has read on secret
    "dave": {"secret", "inner", "open"},  # user grant on secret
    "erin": {"inner", "open"},  # outsider: internal is for every signed-in caller
    "frank": {"secret", "inner", "open"},  # read collaborator of acme/app, which secret inherits
    "wf-app": {"secret", "inner", "open"},  # acme/app's workflow published secret
    "wf-other": {"inner", "open"},  # another repository's workflow
    "ursula": {"inner", "open"},
}
#: actor -> the status of every read request it makes
REFUSED: dict[str, int] = {
    "anonymous": 401,
    "alice-delete": 403,  # a PAT with delete:packages only
    "sam": 401,  # suspended user
    "rita": 401,  # revoked token
}
ACTORS = sorted([*READABLE, *REFUSED])


@dataclass
class World:
    rest: Rest
    tokens: dict[str, str]
    #: package -> id of its active version
    version_ids: dict[str, int]
    #: id of the deleted version of acme/secret
    deleted_id: int
    documentation_url: str

    def token(self, actor: str) -> str | None:
        return None if actor == "anonymous" else self.tokens[actor]


@pytest.fixture(scope="module")
def world(server: Any, rest: Rest) -> Iterator[World]:
    users = ("alice", "bob", "carol", "dave", "erin", "frank", "sam", "rita", "ursula")
    setup = Operator()
    for user in users:
        setup.add("user", "create", user)
    setup.add("org", "create", ORG, "--owner", "alice")
    setup.add("org", "add-member", ORG, "bob")
    setup.add("org", "add-member", ORG, "carol")
    setup.add("team", "create", ORG, "readers")
    setup.add("team", "add-member", ORG, "readers", "carol")
    setup.add("repo", "create", f"{ORG}/app")
    setup.add("repo", "create", f"{ORG}/other")
    setup.add("repo", "grant", f"{ORG}/app", "frank", "read")
    setup.pat("alice", "alice", "read:packages,write:packages,delete:packages")
    setup.pat("alice-delete", "alice", "delete:packages")
    setup.pat("alice-write", "alice", "write:packages")
    for user in ("bob", "carol", "dave", "erin", "frank", "sam", "rita"):
        setup.pat(user, user, READ)
    setup.pat("ursula", "ursula", "write:packages")
    setup.workflow("wf-app", f"{ORG}/app")
    setup.workflow("wf-other", f"{ORG}/other")
    setup.add("user", "suspend", "sam")
    tokens = setup.run(server).tokens
    tokens["tester"] = server.token

    workflow = Pusher(server.url, tokens["wf-app"])
    alice = Pusher(server.url, tokens["alice"])
    ursula = Pusher(server.url, tokens["ursula"])
    try:
        old = workflow.image(f"{ORG}/secret", "old")
        workflow.image(f"{ORG}/secret", "v1")
        alice.image(f"{ORG}/inner", "v1")
        alice.image(f"{ORG}/open", "v1")
        ursula.image("ursula/mine", "v1")
        ursula.image("ursula/shared", "v1")
        deleted = alice.http.delete(f"/v2/{ORG}/secret/manifests/{old.digest}")
        assert deleted.status_code == 202, describe(deleted)
    finally:
        for pusher in (workflow, alice, ursula):
            pusher.close()

    more = Operator()
    more.add("package", "set-visibility", f"{ORG}/inner", "internal")
    more.add("package", "set-visibility", f"{ORG}/open", "public")
    more.add("package", "set-visibility", "ursula/shared", "public")
    more.add("package", "grant", f"{ORG}/secret", f"{ORG}/readers", "read")
    more.add("package", "grant", f"{ORG}/secret", "dave", "read")
    more.add("token", "revoke", tokens["rita"])
    more.run(server)

    version_ids: dict[str, int] = {}
    for name in PACKAGES:
        versions = rest.ok(package_path(f"/orgs/{ORG}", name) + "/versions", server.token)
        version_ids[name] = versions[0]["id"]
    for name in ("mine", "shared"):
        versions = rest.ok(package_path("/users/ursula", name) + "/versions", server.token)
        version_ids[f"ursula/{name}"] = versions[0]["id"]
    deleted_versions = rest.ok(
        package_path(f"/orgs/{ORG}", "secret") + "/versions", server.token, state="deleted"
    )
    assert [v["name"] for v in deleted_versions] == [old.digest]
    yield World(
        rest,
        tokens,
        version_ids,
        deleted_versions[0]["id"],
        f"{server.url}/api/v3/openapi.json",
    )


def _endpoint(kind: str, scope: str, name: str, version_id: int) -> str:
    path = package_path(scope, name)
    if kind == "versions":
        return path + "/versions"
    if kind == "version":
        return f"{path}/versions/{version_id}"
    return path


def _assert_refused(world: World, resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, describe(resp)
    body = resp.json()
    assert set(body) == {"message", "documentation_url"}, describe(resp)
    assert body["documentation_url"] == world.documentation_url, describe(resp)
    if status == 403:
        assert "read:packages" in resp.headers.get("x-accepted-oauth-scopes", ""), describe(resp)


def _assert_not_found(world: World, resp: httpx.Response) -> None:
    """The answer for a package that does not exist, word for word."""
    assert resp.status_code == 404, describe(resp)
    assert resp.json() == {
        "message": "Package not found.",
        "documentation_url": world.documentation_url,
    }, describe(resp)


# -- one package, its versions, one version: every caller ---------------------------------------


@pytest.mark.parametrize("kind", ["package", "versions", "version"])
@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("actor", ACTORS)
def test_read_org_package(world: World, actor: str, package: str, kind: str) -> None:
    path = _endpoint(kind, f"/orgs/{ORG}", package, world.version_ids[package])
    resp = world.rest.get(path, world.token(actor))
    if actor in REFUSED:
        _assert_refused(world, resp, REFUSED[actor])
    elif package in READABLE[actor]:
        assert resp.status_code == 200, describe(resp)
        body = resp.json()
        if kind == "package":
            assert body["name"] == package
            assert body["visibility"] == VISIBILITY[package]
            assert body["owner"]["login"] == ORG
        elif kind == "versions":
            assert [v["id"] for v in body] == [world.version_ids[package]]
        else:
            assert body["id"] == world.version_ids[package]
    else:
        _assert_not_found(world, resp)


def test_anonymous_gets_requires_authentication(world: World) -> None:
    for path in (
        "/user/packages?package_type=container",
        f"/orgs/{ORG}/packages/container/open",
        f"/orgs/{ORG}/packages/container/open/versions",
        "/users/ursula/packages/container/shared",
    ):
        resp = world.rest.get(path)
        assert resp.status_code == 401, describe(resp)
        assert resp.json() == {
            "message": "Requires authentication",
            "documentation_url": world.documentation_url,
        }, describe(resp)


def test_invisible_package_is_answered_like_a_missing_one(world: World) -> None:
    for token in (world.tokens["bob"], world.tokens["wf-other"], world.tokens["erin"]):
        hidden = world.rest.get(package_path(f"/orgs/{ORG}", "secret"), token)
        missing = world.rest.get(package_path(f"/orgs/{ORG}", "no-such-package"), token)
        _assert_not_found(world, hidden)
        _assert_not_found(world, missing)
        assert hidden.headers.get("content-type") == missing.headers.get("content-type")
        hidden_version = world.rest.get(
            f"{package_path(f'/orgs/{ORG}', 'secret')}/versions/{world.version_ids['secret']}",
            token,
        )
        _assert_not_found(world, hidden_version)


def test_scope_error_names_the_scope_needed(world: World) -> None:
    resp = world.rest.get(
        f"/orgs/{ORG}/packages", world.tokens["alice-delete"], package_type="container"
    )
    assert resp.status_code == 403, describe(resp)
    assert resp.headers["x-accepted-oauth-scopes"] == "read:packages", describe(resp)
    assert resp.headers["x-oauth-scopes"] == "delete:packages", describe(resp)


def test_token_scheme_works_like_bearer(world: World) -> None:
    path = package_path(f"/orgs/{ORG}", "secret")
    bearer = world.rest.get(path, world.tokens["carol"])
    token = world.rest.get(path, world.tokens["carol"], scheme="token")
    assert bearer.status_code == token.status_code == 200, describe(token)
    assert bearer.json() == token.json()


def test_dead_tokens_are_refused_even_for_public_packages(world: World) -> None:
    for actor in ("sam", "rita"):
        for path in (package_path(f"/orgs/{ORG}", "open"), "/users/ursula/packages"):
            resp = world.rest.get(path, world.tokens[actor], package_type="container")
            assert resp.status_code == 401, describe(resp)
    bogus = world.rest.get(package_path(f"/orgs/{ORG}", "open"), "cbp_" + "x" * 40)
    assert bogus.status_code == 401, describe(bogus)


# -- versions: state, unknown ids -----------------------------------------------------------------


def test_deleted_versions_are_listed_with_state_deleted(world: World) -> None:
    base = package_path(f"/orgs/{ORG}", "secret") + "/versions"
    active = world.rest.ok(base, world.tokens["carol"], state="active")
    deleted = world.rest.ok(base, world.tokens["carol"], state="deleted")
    assert [v["id"] for v in active] == [world.version_ids["secret"]]
    assert [v["id"] for v in deleted] == [world.deleted_id]
    assert deleted[0]["deleted_at"] is not None
    assert active[0]["deleted_at"] is None
    assert world.rest.ok(base, world.tokens["carol"]) == active  # active is the default
    invalid = world.rest.get(base, world.tokens["carol"], state="gone")
    assert invalid.status_code == 422, describe(invalid)
    hidden = world.rest.get(base, world.tokens["bob"], state="deleted")
    _assert_not_found(world, hidden)
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "secret"), world.tokens["carol"])
    assert package["version_count"] == 1  # active versions only


def test_a_deleted_version_can_still_be_read_by_id(world: World) -> None:
    path = f"{package_path(f'/orgs/{ORG}', 'secret')}/versions/{world.deleted_id}"
    version = world.rest.ok(path, world.tokens["dave"])
    assert version["id"] == world.deleted_id
    assert version["deleted_at"] is not None


def test_version_of_another_package_is_not_found(world: World) -> None:
    path = f"{package_path(f'/orgs/{ORG}', 'open')}/versions/{world.version_ids['secret']}"
    resp = world.rest.get(path, world.tokens["alice"])
    assert resp.status_code == 404, describe(resp)
    assert resp.json()["message"] == "Package version not found.", describe(resp)
    for bad in ("0", "abc"):
        invalid = world.rest.get(
            f"{package_path(f'/orgs/{ORG}', 'open')}/versions/{bad}", world.tokens["alice"]
        )
        assert invalid.status_code in (404, 422), describe(invalid)


# -- listings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ACTORS)
def test_list_org_packages(world: World, actor: str) -> None:
    resp = world.rest.get(f"/orgs/{ORG}/packages", world.token(actor), package_type="container")
    if actor in REFUSED:
        _assert_refused(world, resp, REFUSED[actor])
        return
    assert resp.status_code == 200, describe(resp)
    assert [p["name"] for p in resp.json()] == sorted(READABLE[actor]), describe(resp)


@pytest.mark.parametrize("visibility", ["public", "internal", "private"])
def test_list_filters_by_visibility(world: World, visibility: str) -> None:
    wanted = [name for name in PACKAGES if VISIBILITY[name] == visibility]
    for actor in ("alice", "bob", "erin"):
        found = world.rest.ok(
            f"/orgs/{ORG}/packages",
            world.tokens[actor],
            package_type="container",
            visibility=visibility,
        )
        expected = [name for name in wanted if name in READABLE[actor]]
        assert [p["name"] for p in found] == expected, actor
        assert all(p["visibility"] == visibility for p in found)


def test_list_rejects_a_bad_visibility(world: World) -> None:
    resp = world.rest.get(
        f"/orgs/{ORG}/packages", world.tokens["alice"], package_type="container", visibility="x"
    )
    assert resp.status_code == 422, describe(resp)


@pytest.mark.parametrize(
    "scope", ["/user/packages", "/users/ursula/packages", f"/orgs/{ORG}/packages"]
)
def test_package_type_is_required_and_checked(world: World, scope: str) -> None:
    token = world.tokens["ursula"]
    missing = world.rest.get(scope, token)
    assert missing.status_code == 422, describe(missing)
    body = missing.json()
    assert body["message"] == "Validation Failed", describe(missing)
    assert any(e.get("field") == "package_type" for e in body["errors"]), describe(missing)
    invalid = world.rest.get(scope, token, package_type="pypi")
    assert invalid.status_code == 422, describe(invalid)
    for other in ("npm", "maven", "rubygems", "nuget"):
        resp = world.rest.get(scope, token, package_type=other)
        assert resp.status_code == 200, describe(resp)
        assert resp.json() == [], describe(resp)


def test_list_user_packages(world: World) -> None:
    path = "/users/ursula/packages"
    owner = world.rest.ok(path, world.tokens["ursula"], package_type="container")
    assert [p["name"] for p in owner] == ["mine", "shared"]
    outsider = world.rest.ok(path, world.tokens["erin"], package_type="container")
    assert [p["name"] for p in outsider] == ["shared"]
    admin = world.rest.ok(path, world.tokens["tester"], package_type="container")
    assert [p["name"] for p in admin] == ["mine", "shared"]
    resp = world.rest.get(path, None, package_type="container")
    _assert_refused(world, resp, 401)
    resp = world.rest.get(path, world.tokens["alice-delete"], package_type="container")
    _assert_refused(world, resp, 403)


def test_list_own_packages(world: World) -> None:
    mine = world.rest.ok("/user/packages", world.tokens["ursula"], package_type="container")
    assert [p["name"] for p in mine] == ["mine", "shared"]
    assert {p["owner"]["login"] for p in mine} == {"ursula"}
    private = world.rest.ok(
        "/user/packages", world.tokens["ursula"], package_type="container", visibility="private"
    )
    assert [p["name"] for p in private] == ["mine"]
    # alice owns acme's packages, but none in her own namespace
    assert world.rest.ok("/user/packages", world.tokens["alice"], package_type="container") == []


def test_own_package_through_every_scope(world: World) -> None:
    token = world.tokens["ursula"]
    version = world.version_ids["ursula/mine"]
    for scope in ("/user", "/users/ursula"):
        package = world.rest.ok(package_path(scope, "mine"), token)
        assert package["name"] == "mine"
        assert package["owner"]["login"] == "ursula"
        versions = world.rest.ok(package_path(scope, "mine") + "/versions", token)
        assert [v["id"] for v in versions] == [version]
        one = world.rest.ok(f"{package_path(scope, 'mine')}/versions/{version}", token)
        assert one["id"] == version


def test_other_users_packages(world: World) -> None:
    erin = world.tokens["erin"]
    _assert_not_found(world, world.rest.get(package_path("/users/ursula", "mine"), erin))
    assert world.rest.ok(package_path("/users/ursula", "shared"), erin)["visibility"] == "public"
    # /user means the caller's own namespace: erin has no package named shared
    _assert_not_found(world, world.rest.get(package_path("/user", "shared"), erin))


def test_wrong_owner_type_is_not_found(world: World) -> None:
    alice = world.tokens["alice"]
    ursula = world.tokens["ursula"]
    for resp in (
        world.rest.get(f"/users/{ORG}/packages", alice, package_type="container"),
        world.rest.get(package_path(f"/users/{ORG}", "open"), alice),
        world.rest.get(package_path(f"/users/{ORG}", "open") + "/versions", alice),
        world.rest.get("/orgs/ursula/packages", ursula, package_type="container"),
        world.rest.get(package_path("/orgs/ursula", "shared"), ursula),
        world.rest.get("/orgs/nobody/packages", alice, package_type="container"),
        world.rest.get("/users/nobody/packages", alice, package_type="container"),
        world.rest.get(f"/orgs/{ORG}/packages/npm/open", alice),
    ):
        assert resp.status_code == 404, describe(resp)


# -- workflow tokens ------------------------------------------------------------------------------


def test_workflow_token_on_user_endpoints_is_forbidden(world: World) -> None:
    token = world.tokens["wf-app"]
    for resp in (
        world.rest.get("/user/packages", token, package_type="container"),
        world.rest.get(package_path("/user", "secret"), token),
        world.rest.get(package_path("/user", "secret") + "/versions", token),
    ):
        assert resp.status_code == 403, describe(resp)
        assert "message" in resp.json(), describe(resp)


def test_workflow_token_reads_what_its_repository_published(world: World) -> None:
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "secret"), world.tokens["wf-app"])
    assert package["repository"]["full_name"] == f"{ORG}/app"
    _assert_not_found(
        world, world.rest.get(package_path(f"/orgs/{ORG}", "secret"), world.tokens["wf-other"])
    )
