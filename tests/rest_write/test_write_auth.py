"""Who may call each write endpoint of a package (delete, restore, settings): every refusal with
its exact status (and, for a missing scope, the ``X-Accepted-OAuth-Scopes`` header), then every
kind of caller that may, doing all of it on a package of its own.

The target is a private package of org ``acme``, linked to (and inheriting from) ``acme/app``;
team ``readers`` has read, ``writers`` write, ``admins`` admin; ``collab`` is a read collaborator
on ``acme/app``; the workflows of ``acme/tools`` have write (Actions access). It has a live
version and a deleted one, and a deleted sibling package (set up the same way) to restore.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from rwkit import ORG, PATS, Pkg, World, describe, expect, message, unique

DELETE_SCOPES = "read:packages, delete:packages"
WRITE_SCOPES = "read:packages, write:packages"


@dataclass(frozen=True)
class Endpoint:
    label: str
    method: str
    #: path below the package's path; ``{live}`` / ``{dead}`` are version ids; ``GONE`` means
    #: the deleted sibling package.
    path: str
    body: dict[str, str] | None
    scopes: str


ENDPOINTS = [
    Endpoint("delete package", "DELETE", "", None, DELETE_SCOPES),
    Endpoint("restore package", "POST", "GONE/restore", None, WRITE_SCOPES),
    Endpoint("delete version", "DELETE", "/versions/{live}", None, DELETE_SCOPES),
    Endpoint("restore version", "POST", "/versions/{dead}/restore", None, WRITE_SCOPES),
    Endpoint("update", "PATCH", "", {"visibility": "internal"}, WRITE_SCOPES),
    Endpoint("list access", "GET", "/access", None, WRITE_SCOPES),
    Endpoint("grant user", "PUT", "/access/users/member", {"role": "admin"}, WRITE_SCOPES),
    Endpoint("revoke user", "DELETE", "/access/users/member", None, WRITE_SCOPES),
    Endpoint("grant team", "PUT", "/access/teams/readers", {"role": "admin"}, WRITE_SCOPES),
    Endpoint("revoke team", "DELETE", "/access/teams/admins", None, WRITE_SCOPES),
    Endpoint(
        "grant repository",
        "PUT",
        f"/access/repositories/{ORG}/tools",
        {"role": "admin"},
        WRITE_SCOPES,
    ),
    Endpoint("revoke repository", "DELETE", f"/access/repositories/{ORG}/app", None, WRITE_SCOPES),
    Endpoint("link", "PUT", "/repository", {"repository": f"{ORG}/other"}, WRITE_SCOPES),
    Endpoint("unlink", "DELETE", "/repository", None, WRITE_SCOPES),
]


@dataclass
class Target:
    pkg: Pkg
    gone: Pkg
    live: int
    dead: int

    def url(self, endpoint: Endpoint) -> str:
        if endpoint.path.startswith("GONE"):
            return self.gone.path + endpoint.path.removeprefix("GONE")
        return self.pkg.path + endpoint.path.format(live=self.live, dead=self.dead)


def call(world: World, actor: str | None, target: Target, endpoint: Endpoint) -> httpx.Response:
    return world.rest(actor, endpoint.method, target.url(endpoint), endpoint.body)


def setup_package(world: World, pkg: Pkg, pusher: str = "owner") -> tuple[int, int]:
    """Push two versions; delete one. Grants and link as the module docstring says."""
    live = world.push_image(pusher, pkg.full, "live")
    dead = world.push_image(pusher, pkg.full, "dead")
    for team, role in (("readers", "read"), ("writers", "write"), ("admins", "admin")):
        world.grant(pkg, "teams", team, role)
    world.grant(pkg, "repositories", f"{ORG}/app", "read")
    world.grant(pkg, "repositories", f"{ORG}/tools", "write")
    expect(world.rest("owner", "PUT", f"{pkg.path}/repository", {"repository": f"{ORG}/app"}), 200)
    expect(world.rest("owner", "PATCH", pkg.path, {"inherit_access": True}), 200)
    dead_id = world.version_id(pkg, dead.digest)
    expect(world.client("owner").delete(pkg.version_path(dead_id)), 204)
    return world.version_id(pkg, live.digest), dead_id


def snapshot(world: World, target: Target) -> tuple[object, ...]:
    """What the refused calls must leave alone."""
    package = expect(world.client("admin").get(target.pkg.path), 200).json()
    package.pop("updated_at")
    return (
        package,
        expect(world.client("admin").get(f"{target.pkg.path}/access"), 200).json(),
        [v["id"] for v in world.versions(target.pkg, actor="admin")],
        [v["id"] for v in world.versions(target.pkg, "deleted", actor="admin")],
        world.client("admin").get(target.gone.path).status_code,
    )


@pytest.fixture(scope="module")
def target(world: World) -> Target:
    pkg = Pkg(ORG, unique("authz"))
    live, dead = setup_package(world, pkg)
    gone = Pkg(ORG, unique("authz-gone"))
    setup_package(world, gone)
    expect(world.client("owner").delete(gone.path), 204)
    return Target(pkg, gone, live, dead)


@pytest.fixture(scope="module")
def before(world: World, target: Target) -> tuple[object, ...]:
    return snapshot(world, target)


# -- refusals -----------------------------------------------------------------------------------

REFUSALS = [
    # (actor, status, words in the message)
    (None, 401, "authentication"),
    ("outsider", 404, "not found"),
    ("member", 404, "not found"),  # a plain org member can't see a private package
    ("wf_other", 404, "not found"),
    ("reader", 403, "admin"),
    ("collab", 403, "admin"),  # read through the linked repository
    ("writer", 403, "admin"),
    ("wf_tools", 403, "admin"),  # write through Actions access
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.label)
@pytest.mark.parametrize(
    ("actor", "status", "words"), REFUSALS, ids=[a or "anonymous" for a, _, _ in REFUSALS]
)
def test_refused(
    world: World,
    target: Target,
    before: tuple[object, ...],
    endpoint: Endpoint,
    actor: str | None,
    status: int,
    words: str,
) -> None:
    resp = expect(call(world, actor, target, endpoint), status)
    assert words in message(resp).lower(), describe(resp)
    if status == 401:
        assert "x-accepted-oauth-scopes" not in resp.headers


#: The org owner's tokens that lack a scope, and the scopes each has (write includes read).
LACKING = {
    "owner_ro": {"read:packages"},
    "owner_rw": {"read:packages", "write:packages"},
    "owner_rd": {"read:packages", "delete:packages"},
    "owner_wo": {"read:packages", "write:packages"},
}
SCOPE_CASES = [
    (endpoint, actor)
    for endpoint in ENDPOINTS
    for actor, scopes in LACKING.items()
    if not set(endpoint.scopes.split(", ")) <= scopes
]


@pytest.mark.parametrize(
    ("endpoint", "actor"), SCOPE_CASES, ids=[f"{e.label}-{a}" for e, a in SCOPE_CASES]
)
def test_missing_scope(
    world: World, target: Target, before: tuple[object, ...], endpoint: Endpoint, actor: str
) -> None:
    """The org owner with a token lacking a scope the endpoint needs: 403, and the header that
    says which scopes the endpoint accepts."""
    resp = expect(call(world, actor, target, endpoint), 403)
    assert resp.headers.get("x-accepted-oauth-scopes") == endpoint.scopes, describe(resp)
    has = set(resp.headers.get("x-oauth-scopes", "").split(", "))
    assert has == set(PATS[actor][1].split(",")), describe(resp)
    assert "scope" in message(resp), describe(resp)


def test_refusals_changed_nothing(world: World, target: Target, before: tuple[object, ...]) -> None:
    assert snapshot(world, target) == before


def test_workflow_token_on_the_signed_in_user_scope_is_refused(world: World) -> None:
    resp = expect(world.client("wf_app").delete("/api/v3/user/packages/container/anything"), 403)
    assert "integration" in message(resp)


def test_other_workflow_on_a_public_package_is_403(world: World) -> None:
    pkg = Pkg(ORG, unique("wf-public"))
    world.push_image("wf_app", pkg.full, "v1")
    expect(world.rest("wf_app", "PATCH", pkg.path, {"visibility": "public"}), 200)
    for actor in ("wf_other", "outsider", "member"):
        resp = expect(world.client(actor).delete(pkg.path), 403)
        assert "admin" in message(resp)


# -- callers that may -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "pusher"),
    [
        ("owner", "owner"),  # owner of the organization
        ("team_admin", "owner"),  # admin through a team
        ("admin", "owner"),  # site administrator
        ("wf_app", "wf_app"),  # the workflow that published the package
    ],
)
def test_every_write_endpoint_works_for(world: World, actor: str, pusher: str) -> None:
    pkg = Pkg(ORG, unique(f"ok-{actor}"))
    gone = Pkg(ORG, unique(f"ok-gone-{actor}"))
    live, dead = setup_package(world, pkg, pusher)
    setup_package(world, gone, pusher)
    expect(world.client("owner").delete(gone.path), 204)
    target = Target(pkg, gone, live, dead)

    def ok(label: str, status: int) -> httpx.Response:
        endpoint = next(e for e in ENDPOINTS if e.label == label)
        return expect(call(world, actor, target, endpoint), status)

    grants = ok("list access", 200).json()
    assert {"grantee_type": "team", "grantee": f"{ORG}/readers", "role": "read"} in grants
    ok("grant user", 204)
    ok("grant team", 204)
    ok("grant repository", 204)
    grants = {(g["grantee_type"], g["grantee"], g["role"]) for g in ok("list access", 200).json()}
    assert {
        ("user", "member", "admin"),
        ("team", f"{ORG}/readers", "admin"),
        ("repository", f"{ORG}/tools", "admin"),
    } <= grants
    expect(world.pull("member", pkg.full, "live"), 200)  # the grant is in force
    ok("revoke repository", 204)
    if actor != "team_admin":  # revoking the admins team would revoke the caller
        ok("revoke team", 204)
    ok("revoke user", 204)
    assert ok("link", 200).json()["repository"]["full_name"] == f"{ORG}/other"
    assert ok("unlink", 200).json()["repository"] is None
    assert ok("update", 200).json()["visibility"] == "internal"
    ok("delete version", 204)
    ok("restore version", 204)
    ok("restore package", 204)
    expect(world.pull("owner", gone.full, "live"), 200)
    ok("delete package", 204)
    expect(world.client("owner").get(pkg.path), 404)
