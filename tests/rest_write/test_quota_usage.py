"""A namespace's storage and quota through the REST API: ``GET .../packages/usage`` covers the
packages the caller may read (a private package's size never shows to others) and gives the
quota to those who administer the namespace; site administrators set and remove quotas with
``/admin/namespaces/{owner}/quota``, and the pushes feel it."""

from __future__ import annotations

from rwkit import OWNER, World, describe, expect, oci_code, unique


def usage(world: World, actor: str, org: str) -> dict[str, object]:
    body: dict[str, object] = expect(
        world.rest(actor, "GET", f"/api/v3/orgs/{org}/packages/usage"), 200
    ).json()
    return body


def package_stored(world: World, org: str, name: str) -> int:
    resp = world.rest("owner", "GET", f"/api/v3/orgs/{org}/packages/container/{name}/usage")
    return int(expect(resp, 200).json()["stored"])


def test_namespace_usage_covers_what_the_caller_sees(world: World) -> None:
    org = unique("qorg")
    expect(
        world.rest("admin", "POST", "/api/v3/admin/organizations", {"login": org, "admin": OWNER}),
        201,
    )
    world.push_image("owner", f"{org}/open", "v1")
    world.push_image("owner", f"{org}/secret", "v1")
    expect(
        world.rest(
            "owner",
            "PATCH",
            f"/api/v3/orgs/{org}/packages/container/open",
            {"visibility": "public"},
        ),
        200,
    )
    open_size, secret_size = (
        package_stored(world, org, "open"),
        package_stored(world, org, "secret"),
    )

    mine = usage(world, "owner", org)
    assert mine["packages"] == 2 and mine["namespace"] == org, mine
    assert mine["stored"] == open_size + secret_size, mine
    assert mine["quota"] == {
        "used": open_size + secret_size,
        "quota": None,
        "warn_percent": None,
        "percent_used": None,
    }, mine

    theirs = usage(world, "outsider", org)
    assert theirs["packages"] == 1 and theirs["stored"] == open_size, theirs
    assert theirs["quota"] is None, "the counter includes private packages: not for outsiders"
    expect(world.rest(None, "GET", f"/api/v3/orgs/{org}/packages/usage"), 401)
    expect(world.rest("outsider", "GET", "/api/v3/orgs/no-such-org-here/packages/usage"), 404)
    mine = expect(world.rest("owner", "GET", "/api/v3/user/packages/usage"), 200).json()
    assert mine["namespace"] == OWNER and mine["quota"] is not None, mine


def test_site_admins_set_quotas_and_pushes_feel_them(world: World) -> None:
    org = unique("qset")
    expect(
        world.rest("admin", "POST", "/api/v3/admin/organizations", {"login": org, "admin": OWNER}),
        201,
    )
    path = f"/api/v3/admin/namespaces/{org}/quota"
    for actor, status in (("owner", 403), ("outsider", 403), (None, 401)):
        expect(world.rest(actor, "PUT", path, {"quota": "1kB"}), status)
        expect(world.rest(actor, "GET", path), status)
    expect(world.rest("admin", "PUT", path, {"quota": "ten gigs"}), 422)
    expect(world.rest("admin", "PUT", path, {"quota": 1000, "warn_percent": 101}), 422)
    expect(world.rest("admin", "GET", "/api/v3/admin/namespaces/no-such-org-here/quota"), 404)

    got = expect(world.rest("admin", "PUT", path, {"quota": "1kB", "warn_percent": 80}), 200)
    assert got.json() == {
        "namespace": org,
        "used": 0,
        "quota": 1000,
        "warn_percent": 80,
        "percent_used": 0.0,
    }, describe(got)
    assert usage(world, "owner", org)["quota"] == {
        "used": 0,
        "quota": 1000,
        "warn_percent": 80,
        "percent_used": 0.0,
    }
    resp = world.client("owner").post(
        f"/v2/{org}/app/blobs/uploads/",
        params={"digest": "sha256:" + "0" * 64},
        content=b"x" * 2000,
    )
    assert resp.status_code == 403 and oci_code(resp) == "DENIED", describe(resp)
    assert f"namespace {org} uses 0 B of its 1 kB quota; this push adds 2 kB" in resp.text

    got = expect(world.rest("admin", "DELETE", path), 200)
    assert got.json()["quota"] is None, describe(got)
    world.push_image("owner", f"{org}/app", "v1")
    assert expect(world.rest("admin", "GET", path), 200).json()["used"] > 0
