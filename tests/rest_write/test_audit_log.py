"""The audit log from the outside: every action on a package, a token or a sign-in leaves an
entry with its actor (user, token, workflow repository) and address, in GitHub's audit-log shape
(``/orgs/{org}/audit-log``, ``/user/audit-log``, ``/admin/audit-log``), newest first, with cursor
pagination; only owners (or site administrators) read an organization's log."""

from __future__ import annotations

import json
from typing import Any

import httpx
from kit import operator_cli
from rwkit import ORG, OWNER, Pkg, World, basic, describe, expect, unique

LOG = f"/api/v3/orgs/{ORG}/audit-log"


def entries(world: World, actor: str, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every entry of a log, following the ``Link`` header page by page."""
    found: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, Any] | None = params
    while next_url:
        resp = expect(world.client(actor).get(next_url, params=query), 200)
        found += resp.json()
        link = resp.headers.get("link", "")
        next_url = link[1 : link.index(">")] if 'rel="next"' in link else None
        query = None
    return found


def test_every_package_action_is_logged_with_its_actor(world: World) -> None:
    pkg = Pkg(ORG, unique("audited"))
    first = world.push_image("owner", pkg.full, "latest")
    second = world.push_image("owner", pkg.full, "latest")  # the tag moves
    version = world.version_id(pkg, first.digest)
    expect(world.client("owner").delete(pkg.version_path(version)), 204)
    expect(world.client("owner").post(f"{pkg.version_path(version)}/restore"), 204)
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "internal"}), 200)
    world.grant(pkg, "users", "member", "read")
    expect(world.client("owner").delete(f"{pkg.path}/access/users/member"), 204)
    world.push_image("owner", pkg.full, "ci")
    expect(world.client("owner").delete(f"/v2/{pkg.full}/manifests/ci"), 202)
    expect(world.client("owner").delete(pkg.path), 204)
    expect(world.client("owner").post(f"{pkg.path}/restore"), 204)

    found = entries(world, "owner", LOG, phrase=f"package:{pkg.full}", per_page=3)
    actions = [e["action"] for e in reversed(found)]
    assert actions[:3] == [
        "packages.package_published",
        "packages.package_version_published",
        "packages.package_tag_moved",
    ], actions
    assert actions[3:][:5] == [
        "packages.package_version_published",
        "packages.package_tag_moved",
        "packages.package_version_deleted",
        "packages.package_version_restored",
        "packages.package_visibility_changed",
    ], actions
    assert actions[-2:] == ["packages.package_deleted", "packages.package_restored"], actions
    assert "packages.package_access_granted" in actions
    assert "packages.package_access_revoked" in actions
    assert "packages.package_tag_deleted" in actions
    ids = [e["_document_id"] for e in found]
    assert len(ids) == len(set(ids)), "a page boundary repeated an entry"

    by_action = {e["action"]: e for e in found}
    published = by_action["packages.package_published"]
    assert published["actor"] == OWNER and published["actor_id"]
    assert published["actor_ip"] == "127.0.0.1"
    assert published["org"] == ORG and published["user"] is None
    assert published["programmatic_access_type"] == "personal access token"
    assert published["token_id"]
    assert published["digest"] == first.digest and published["package_version_id"]
    assert published["@timestamp"] == published["created_at"] > 1_600_000_000_000
    moved = [e for e in found if e["action"] == "packages.package_tag_moved"]
    assert moved[-1]["data"] == {"tag": "latest", "before": None}
    assert moved[-2]["data"] == {"tag": "latest", "before": first.digest}
    assert moved[-2]["digest"] == second.digest
    deleted = by_action["packages.package_version_deleted"]
    assert deleted["digest"] == first.digest and deleted["package_version_id"] == version
    assert by_action["packages.package_visibility_changed"]["data"] == {
        "visibility": "internal",
        "before": "private",
    }
    granted = by_action["packages.package_access_granted"]
    assert granted["data"]["grantee"] == "member" and granted["data"]["role"] == "read"


def test_a_workflow_push_names_its_repository(world: World) -> None:
    pkg = Pkg(ORG, unique("wfpush"))
    world.push_image("wf_app", pkg.full, "v1")
    found = entries(
        world, "owner", LOG, phrase=f"package:{pkg.full} action:packages.package_published"
    )
    assert len(found) == 1, found
    assert found[0]["workflow_repository"] == f"{ORG}/app"
    assert found[0]["actor"] == f"workflow:{ORG}/app"
    assert found[0]["programmatic_access_type"] == "workflow token"


def test_tokens_and_failed_sign_ins_are_in_the_users_log(world: World) -> None:
    created = expect(
        world.rest("victim", "POST", "/api/v3/user/tokens", {"scopes": ["read:packages"]}), 201
    ).json()
    expect(world.client("victim").delete(f"/api/v3/user/tokens/{created['id']}"), 204)
    wrong = httpx.get(
        f"{world.url}/v2/",
        headers={"Authorization": basic("victim", "cbp_not-a-token-at-all")},
        timeout=30,
    )
    assert wrong.status_code == 401, describe(wrong)
    found = entries(world, "victim", "/api/v3/user/audit-log", per_page=100)
    actions = [e["action"] for e in found]
    assert actions[:3] == [
        "user.failed_login",
        "personal_access_token.revoked",
        "personal_access_token.created",
    ], actions
    failed, revoked, made = found[:3]
    assert failed["actor"] is None and failed["actor_ip"] == "127.0.0.1"
    assert failed["user"] == "victim" and failed["data"]["login"] == "victim"
    assert made["data"]["token_id"] == created["id"] == revoked["data"]["token_id"]
    assert made["actor"] == "victim"
    # Nothing of the kind reaches another user's log.
    others = entries(world, "outsider", "/api/v3/user/audit-log", per_page=100)
    assert not [e for e in others if e["data"].get("token_id") == created["id"]]


def test_who_may_read_which_log(world: World) -> None:
    assert world.client(None).get(LOG).status_code == 401
    assert world.client("outsider").get(LOG).status_code == 404  # not a member: no such org
    member = world.client("member").get(LOG)
    assert member.status_code == 403, describe(member)
    assert world.client("admin").get(LOG).status_code == 200
    assert world.client("owner").get("/api/v3/admin/audit-log").status_code == 403
    site = expect(world.client("admin").get("/api/v3/admin/audit-log?per_page=5"), 200)
    assert len(site.json()) == 5 and 'rel="next"' in site.headers["link"]
    assert world.client("owner").get("/api/v3/orgs/no-such-org/audit-log").status_code == 404


def test_filters_and_bad_searches(world: World) -> None:
    pkg = Pkg(ORG, unique("filtered"))
    world.push_image("owner", pkg.full, "a")
    world.push_image("owner", pkg.full, "b")
    only = entries(
        world, "owner", LOG, phrase=f"package:{pkg.full} action:packages.package_tag_moved"
    )
    assert [e["data"]["tag"] for e in only] == ["b", "a"]
    everything = entries(world, "owner", LOG, phrase=f"package:{pkg.full} action:packages")
    assert len(everything) == 5
    assert entries(world, "owner", LOG, phrase=f"package:{pkg.full} actor:outsider") == []
    future = entries(world, "owner", LOG, phrase=f"package:{pkg.full} created:>=2999-01-01")
    assert future == []
    for phrase in ("color:blue", "created:2020", "action:nope", "-action:packages"):
        resp = world.client("owner").get(LOG, params={"phrase": phrase})
        assert resp.status_code == 422, describe(resp)
        assert resp.json()["message"] == "Validation Failed"
    bad_cursor = world.client("owner").get(LOG, params={"after": "x"})
    assert bad_cursor.status_code == 422, describe(bad_cursor)


def test_the_operator_exports_the_log(world: World, world_server: Any) -> None:
    pkg = Pkg(ORG, unique("exported"))
    image = world.push_image("owner", pkg.full, "v1")
    (out, older) = operator_cli(
        world_server.data_dir,
        world_server.env,
        [
            ["audit", "export", "--json", "--since", "1h"],
            ["audit", "export", "--json", "--since", "2999-01-01"],
        ],
    )
    lines = [json.loads(line) for line in out.splitlines()]
    ids = [int(e["_document_id"]) for e in lines]
    assert ids == sorted(ids), "oldest first"
    mine = [e for e in lines if e["package"] == pkg.full]
    assert [e["action"] for e in mine] == [
        "packages.package_published",
        "packages.package_version_published",
        "packages.package_tag_moved",
    ]
    assert mine[0]["digest"] == image.digest and mine[0]["actor"] == OWNER
    assert older == ""
