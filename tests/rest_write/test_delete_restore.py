"""Deleting and restoring packages and versions through ``/api/v3`` (and the registry's own
``DELETE /v2/<name>/manifests/<digest>``), checked by what registry clients then see.

Rules: deleting a package deletes all its versions and frees its name at once (a new push
creates a new package); deleted content is not pullable and not listed (except
``versions?state=deleted``); a restore brings back the most recently deleted package of that
name with its grants (409 if the name was reused meanwhile); a deleted version frees its tags and
a restored version gets back those still free; public packages with a version downloaded more
than ``protected_downloads`` times are for site administrators to delete; a version an active
index references can't be deleted on its own, an index takes its unshared children with it.
"""

from __future__ import annotations

import httpx
import pytest
from rwkit import (
    ORG,
    OWNER,
    PROTECTED_DOWNLOADS,
    Image,
    Pkg,
    World,
    describe,
    expect,
    message,
    oci_code,
    unique,
    wait_for,
)

GONE = ("NAME_UNKNOWN",)
VERSION_GONE = ("MANIFEST_UNKNOWN",)


def names_listed(world: World, actor: str, owner_scope: str, owner: str) -> set[str]:
    resp = expect(
        world.client(actor).get(
            f"/api/v3/{owner_scope}/{owner}/packages",
            params={"package_type": "container", "per_page": 100},
        ),
        200,
    )
    return {p["name"] for p in resp.json()}


def download_count(world: World, pkg: Pkg, version_id: int) -> int:
    resp = expect(world.client("admin").get(pkg.version_path(version_id)), 200)
    return int(resp.json()["metadata"]["container"]["download_count"])


def assert_refused_by_registry(resp: httpx.Response, status: int | None, *words: str) -> None:
    """A registry DELETE refused by a package rule: a client error (``status`` when the docs
    name one; never a server error, never "unknown") whose OCI error message says why."""
    if status is None:
        assert 400 <= resp.status_code < 500 and resp.status_code != 404, describe(resp)
    else:
        assert resp.status_code == status, describe(resp)
    errors = resp.json().get("errors")
    assert isinstance(errors, list) and errors, describe(resp)
    assert errors[0].get("code") != "UNKNOWN", describe(resp)
    text = str(errors[0].get("message", "")).lower()
    for word in words:
        assert word.lower() in text, describe(resp)


# -- packages -----------------------------------------------------------------------------------


def test_delete_package_hides_everything_and_restore_brings_the_same_bytes_back(
    world: World,
) -> None:
    pkg = Pkg(ORG, unique("whole"))
    one = world.push_image("owner", pkg.full, "one")
    two = world.push_image("owner", pkg.full, "two")
    before = expect(world.client("owner").get(pkg.path), 200).json()

    resp = expect(world.client("owner").delete(pkg.path), 204)
    assert resp.content == b""

    expect(world.client("owner").get(pkg.path), 404)
    assert pkg.name not in names_listed(world, "owner", "orgs", ORG)
    expect(world.client("owner").get(f"{pkg.path}/versions"), 404)
    for image, tag in ((one, "one"), (two, "two")):
        world.assert_not_pullable("owner", pkg.full, image, tag, GONE)
        blob = next(iter(image.blobs))
        resp = world.client("owner").get(f"/v2/{pkg.full}/blobs/{blob}")
        assert resp.status_code == 404 and oci_code(resp) in GONE, describe(resp)
    resp = world.client("owner").get(f"/v2/{pkg.full}/tags/list")
    assert resp.status_code == 404 and oci_code(resp) == "NAME_UNKNOWN", describe(resp)

    expect(world.client("owner").post(f"{pkg.path}/restore"), 204)

    after = expect(world.client("owner").get(pkg.path), 200).json()
    assert after["id"] == before["id"]
    assert after["version_count"] == 2
    assert pkg.name in names_listed(world, "owner", "orgs", ORG)
    world.assert_pulls("owner", pkg.full, one, "one")
    world.assert_pulls("owner", pkg.full, two, "two")
    assert world.tags("owner", pkg.full) == ["one", "two"]


@pytest.mark.parametrize(
    ("scope", "owner", "name"),
    [
        ("user", OWNER, "mine"),
        ("users", OWNER, "theirs"),
        ("orgs", ORG, "nested/deep/api"),
    ],
)
def test_delete_and_restore_in_every_scope(world: World, scope: str, owner: str, name: str) -> None:
    """``/user``, ``/users/{username}`` and ``/orgs/{org}``; ``/`` in names sent as ``%2F``."""
    pkg = Pkg(owner, unique(name), scope)
    assert "%2F" in pkg.path or "/" not in pkg.name
    image = world.push_image("owner", pkg.full, "latest")

    expect(world.client("owner").delete(pkg.path), 204)
    world.assert_not_pullable("owner", pkg.full, image, "latest", GONE)
    listing_scope = "orgs" if scope == "orgs" else "users"
    assert pkg.name not in names_listed(world, "owner", listing_scope, owner)

    expect(world.client("owner").post(f"{pkg.path}/restore"), 204)
    world.assert_pulls("owner", pkg.full, image, "latest")
    assert expect(world.client("owner").get(pkg.path), 200).json()["name"] == pkg.name


def test_new_push_after_delete_is_a_new_package_and_restore_then_conflicts(world: World) -> None:
    pkg = Pkg(ORG, unique("reuse"))
    old = world.push_image("owner", pkg.full, "v1")
    world.grant(pkg, "teams", "readers", "read")
    old_id = expect(world.client("owner").get(pkg.path), 200).json()["id"]
    expect(world.client("owner").delete(pkg.path), 204)

    new = world.push_image("owner", pkg.full, "v1")
    found = expect(world.client("owner").get(pkg.path), 200).json()
    assert found["id"] != old_id
    assert found["version_count"] == 1
    grants = expect(world.client("owner").get(f"{pkg.path}/access"), 200).json()
    assert grants == [{"grantee_type": "user", "grantee": OWNER, "role": "admin"}]  # the publisher
    resp = world.pull("reader", pkg.full, "v1")
    assert resp.status_code == 404 and oci_code(resp) == "NAME_UNKNOWN", describe(resp)
    resp = world.pull("owner", pkg.full, old.digest)
    assert resp.status_code == 404 and oci_code(resp) == "MANIFEST_UNKNOWN", describe(resp)

    resp = expect(world.client("owner").post(f"{pkg.path}/restore"), 409)
    text = message(resp)
    assert pkg.full in text and "new package" in text, describe(resp)
    # Nothing changed: the new package is still the one under the name.
    assert expect(world.client("owner").get(pkg.path), 200).json()["id"] == found["id"]
    world.assert_pulls("owner", pkg.full, new, "v1")

    # Once the new one is deleted too, a restore brings back the most recently deleted: the new.
    expect(world.client("owner").delete(pkg.path), 204)
    expect(world.client("owner").post(f"{pkg.path}/restore"), 204)
    assert expect(world.client("owner").get(pkg.path), 200).json()["id"] == found["id"]
    world.assert_pulls("owner", pkg.full, new, "v1")


def test_restore_brings_grants_back(world: World) -> None:
    pkg = Pkg(ORG, unique("grants"))
    image = world.push_image("owner", pkg.full, "v1")
    world.grant(pkg, "teams", "readers", "read")
    world.grant(pkg, "users", "outsider", "write")
    world.assert_pulls("reader", pkg.full, image, "v1")
    access = expect(world.client("owner").get(f"{pkg.path}/access"), 200).json()

    expect(world.client("owner").delete(pkg.path), 204)
    for actor in ("reader", "outsider"):
        world.assert_not_pullable(actor, pkg.full, image, "v1", GONE)

    expect(world.client("owner").post(f"{pkg.path}/restore"), 204)
    assert expect(world.client("owner").get(f"{pkg.path}/access"), 200).json() == access
    assert {(g["grantee"], g["role"]) for g in access} == {
        (f"{ORG}/readers", "read"),
        ("outsider", "write"),
        (OWNER, "admin"),  # the publisher
    }
    world.assert_pulls("reader", pkg.full, image, "v1")
    world.assert_pulls("outsider", pkg.full, image, "v1")
    world.push_image("outsider", pkg.full, "v2")  # write came back too


def test_restore_without_a_deleted_package_is_refused(world: World) -> None:
    never = Pkg(ORG, unique("never"))
    assert "not found" in message(expect(world.client("owner").post(f"{never.path}/restore"), 404))
    # A live package and nothing deleted under its name: nothing to restore (docs/rest-api.md
    # says 404 "a package name with nothing deleted"; the service answers 409 "not deleted").
    alive = Pkg(ORG, unique("alive"))
    image = world.push_image("owner", alive.full, "v1")
    before = expect(world.client("owner").get(alive.path), 200).json()
    resp = world.client("owner").post(f"{alive.path}/restore")
    assert resp.status_code in (404, 409), describe(resp)
    assert expect(world.client("owner").get(alive.path), 200).json()["id"] == before["id"]
    world.assert_pulls("owner", alive.full, image, "v1")


def test_deleting_a_deleted_package_again_is_404(world: World) -> None:
    pkg = Pkg(ORG, unique("twice"))
    world.push_image("owner", pkg.full, "v1")
    expect(world.client("owner").delete(pkg.path), 204)
    expect(world.client("owner").delete(pkg.path), 404)


# -- versions -----------------------------------------------------------------------------------


def test_delete_version_frees_its_tags_and_restore_takes_back_the_free_ones(world: World) -> None:
    pkg = Pkg(ORG, unique("tags"))
    doomed = world.push_image("owner", pkg.full, "one")
    expect(world.put_manifest("owner", pkg.full, "two", doomed.manifest), 201)
    keep = world.push_image("owner", pkg.full, "keep")
    version = world.version_id(pkg, doomed.digest)

    expect(world.client("owner").delete(pkg.version_path(version)), 204)

    assert [v["name"] for v in world.versions(pkg)] == [keep.digest]
    deleted = world.versions(pkg, "deleted")
    assert [v["id"] for v in deleted] == [version]
    assert deleted[0]["deleted_at"] is not None
    assert deleted[0]["metadata"]["container"]["tags"] == ["one", "two"]
    assert expect(world.client("owner").get(pkg.path), 200).json()["version_count"] == 1
    world.assert_not_pullable("owner", pkg.full, doomed, "one", VERSION_GONE)
    world.assert_not_pullable("owner", pkg.full, doomed, "two", VERSION_GONE)
    assert world.tags("owner", pkg.full) == ["keep"]

    # "two" is taken by another image meanwhile: the restore leaves it there.
    other = world.push_image("owner", pkg.full, "two")
    expect(world.client("owner").post(f"{pkg.version_path(version)}/restore"), 204)

    world.assert_pulls("owner", pkg.full, doomed, "one")
    world.assert_pulls("owner", pkg.full, other, "two")
    assert world.tags("owner", pkg.full) == ["keep", "one", "two"]
    restored = {v["name"]: v for v in world.versions(pkg)}
    assert restored[doomed.digest]["metadata"]["container"]["tags"] == ["one"]
    assert restored[doomed.digest]["deleted_at"] is None
    assert world.versions(pkg, "deleted") == []


def test_version_delete_and_restore_edge_cases(world: World) -> None:
    pkg = Pkg(ORG, unique("edges"))
    image = world.push_image("owner", pkg.full, "v1")
    world.push_image("owner", pkg.full, "v2")
    version = world.version_id(pkg, image.digest)

    resp = expect(world.client("owner").post(f"{pkg.version_path(version)}/restore"), 409)
    assert "not deleted" in message(resp)
    expect(world.client("owner").delete(pkg.version_path(version)), 204)
    expect(world.client("owner").delete(pkg.version_path(version)), 404)
    expect(world.client("owner").delete(pkg.version_path(version + 10_000)), 404)
    expect(world.client("owner").post(f"{pkg.version_path(version)}/restore"), 204)
    resp = expect(world.client("owner").post(f"{pkg.version_path(version)}/restore"), 409)
    world.assert_pulls("owner", pkg.full, image, "v1")

    # A version id of another package is not a version of this one.
    other = Pkg(ORG, unique("edges-other"))
    world.push_image("owner", other.full, "v1")
    expect(world.client("owner").delete(other.version_path(version)), 404)
    world.assert_pulls("owner", pkg.full, image, "v1")


def test_registry_delete_by_digest_is_a_restorable_version_delete(world: World) -> None:
    pkg = Pkg(ORG, unique("v2del"))
    image = world.push_image("owner", pkg.full, "t")
    world.push_image("owner", pkg.full, "other")
    world.grant(pkg, "teams", "writers", "write")

    resp = world.client("writer").delete(f"/v2/{pkg.full}/manifests/{image.digest}")
    assert resp.status_code == 403 and oci_code(resp) == "DENIED", describe(resp)
    resp = world.client("owner").delete(f"/v2/{pkg.full}/manifests/sha256:{'0' * 64}")
    assert resp.status_code == 404 and oci_code(resp) == "MANIFEST_UNKNOWN", describe(resp)

    expect(world.client("owner").delete(f"/v2/{pkg.full}/manifests/{image.digest}"), 202)
    world.assert_not_pullable("owner", pkg.full, image, "t", VERSION_GONE)
    deleted = world.versions(pkg, "deleted")
    assert [(v["name"], v["metadata"]["container"]["tags"]) for v in deleted] == [
        (image.digest, ["t"])
    ]
    resp = world.client("owner").delete(f"/v2/{pkg.full}/manifests/{image.digest}")
    assert resp.status_code == 404 and oci_code(resp) == "MANIFEST_UNKNOWN", describe(resp)

    expect(world.client("owner").post(f"{pkg.version_path(deleted[0]['id'])}/restore"), 204)
    world.assert_pulls("owner", pkg.full, image, "t")


# -- downloads ----------------------------------------------------------------------------------


def test_popular_public_versions_are_for_site_admins_to_delete(world: World) -> None:
    pkg = Pkg(ORG, unique("popular"))
    popular = world.push_image("owner", pkg.full, "latest")
    quiet = world.push_image("owner", pkg.full, "quiet")
    extra = world.push_image("owner", pkg.full, "extra")
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "public"}), 200)
    popular_id = world.version_id(pkg, popular.digest)
    quiet_id = world.version_id(pkg, quiet.digest)
    extra_id = world.version_id(pkg, extra.digest)

    # HEADs are not downloads; GETs are (anonymous ones included).
    for _ in range(PROTECTED_DOWNLOADS + 3):
        expect(world.client(None).head(f"/v2/{pkg.full}/manifests/quiet"), 200)
    for _ in range(PROTECTED_DOWNLOADS + 1):
        world.assert_pulls(None, pkg.full, popular, "latest")  # by digest and by tag: 2 GETs
    wait_for(
        lambda: download_count(world, pkg, popular_id) >= 2 * (PROTECTED_DOWNLOADS + 1),
        "the download counts to be written",
    )
    assert download_count(world, pkg, quiet_id) == 0
    assert expect(world.client("owner").get(pkg.path), 200).json()["download_count"] >= 6

    resp = expect(world.client("owner").delete(pkg.path), 400)
    text = message(resp)
    assert f"more than {PROTECTED_DOWNLOADS} downloads" in text, describe(resp)
    assert "site administrator" in text, describe(resp)
    resp = expect(world.client("owner").delete(pkg.version_path(popular_id)), 400)
    assert f"more than {PROTECTED_DOWNLOADS} downloads" in message(resp), describe(resp)
    world.assert_pulls(None, pkg.full, popular, "latest")

    # A version under the limit is the admins' to delete, even in a protected package.
    expect(world.client("owner").delete(pkg.version_path(extra_id)), 204)
    expect(world.client("owner").post(f"{pkg.version_path(extra_id)}/restore"), 204)

    # The site administrator may delete the version and the package.
    expect(world.client("admin").delete(pkg.version_path(popular_id)), 204)
    world.assert_not_pullable("admin", pkg.full, popular, "latest", VERSION_GONE)
    expect(world.client("admin").post(f"{pkg.version_path(popular_id)}/restore"), 204)
    expect(world.client("admin").delete(pkg.path), 204)
    world.assert_not_pullable("admin", pkg.full, quiet, "quiet", GONE)
    expect(world.client("admin").post(f"{pkg.path}/restore"), 204)
    world.assert_pulls(None, pkg.full, popular, "latest")


def test_registry_delete_of_a_popular_public_version_is_refused_for_admins(world: World) -> None:
    pkg = Pkg(ORG, unique("popular-v2"))
    popular = world.push_image("owner", pkg.full, "latest")
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "public"}), 200)
    popular_id = world.version_id(pkg, popular.digest)
    for _ in range(PROTECTED_DOWNLOADS + 1):
        expect(world.pull(None, pkg.full, "latest"), 200)
    wait_for(
        lambda: download_count(world, pkg, popular_id) > PROTECTED_DOWNLOADS,
        "the download counts to be written",
    )

    resp = world.client("owner").delete(f"/v2/{pkg.full}/manifests/{popular.digest}")
    assert_refused_by_registry(resp, None, "downloads")
    world.assert_pulls(None, pkg.full, popular, "latest")

    expect(world.client("admin").delete(f"/v2/{pkg.full}/manifests/{popular.digest}"), 202)
    world.assert_not_pullable("admin", pkg.full, popular, "latest", VERSION_GONE)


def test_private_packages_are_not_protected_by_downloads(world: World) -> None:
    pkg = Pkg(ORG, unique("private-popular"))
    image = world.push_image("owner", pkg.full, "latest")
    version = world.version_id(pkg, image.digest)
    for _ in range(PROTECTED_DOWNLOADS + 1):
        expect(world.pull("owner", pkg.full, "latest"), 200)
    wait_for(
        lambda: download_count(world, pkg, version) > PROTECTED_DOWNLOADS,
        "the download counts to be written",
    )
    expect(world.client("owner").delete(pkg.version_path(version)), 204)
    expect(world.client("owner").post(f"{pkg.version_path(version)}/restore"), 204)
    expect(world.client("owner").delete(pkg.path), 204)


# -- indexes ------------------------------------------------------------------------------------


@pytest.fixture
def indexed(world: World) -> tuple[Pkg, dict[str, Image]]:
    """A package with images a, b, c and two indexes: ``multi`` = [a, b], ``other`` = [b, c]."""
    pkg = Pkg(ORG, unique("multi"))
    a, b, c = (world.push_image("owner", pkg.full) for _ in range(3))
    multi = world.push_index("owner", pkg.full, [a, b], "multi")
    other = world.push_index("owner", pkg.full, [b, c], "other")
    return pkg, {"a": a, "b": b, "c": c, "multi": multi, "other": other}


def test_a_version_an_active_index_uses_cannot_be_deleted_alone(
    world: World, indexed: tuple[Pkg, dict[str, Image]]
) -> None:
    pkg, images = indexed
    a = world.version_id(pkg, images["a"].digest)
    resp = expect(world.client("owner").delete(pkg.version_path(a)), 409)
    text = message(resp)
    assert images["multi"].digest in text and "index" in text, describe(resp)

    resp = world.client("owner").delete(f"/v2/{pkg.full}/manifests/{images['a'].digest}")
    assert_refused_by_registry(resp, 409, "index")  # docs/permissions.md
    for image in images.values():
        world.assert_pulls("owner", pkg.full, image, None)
    assert world.versions(pkg, "deleted") == []


def test_deleting_an_index_takes_its_children_and_restore_brings_them_back(world: World) -> None:
    pkg = Pkg(ORG, unique("plain-index"))
    x, y = (world.push_image("owner", pkg.full) for _ in range(2))
    index = world.push_index("owner", pkg.full, [x, y], "multi")

    expect(world.client("owner").delete(pkg.version_path(world.version_id(pkg, index.digest))), 204)
    assert world.versions(pkg) == []
    assert {v["name"] for v in world.versions(pkg, "deleted")} == {x.digest, y.digest, index.digest}
    world.assert_not_pullable("owner", pkg.full, index, "multi", VERSION_GONE)
    for child in (x, y):
        world.assert_not_pullable("owner", pkg.full, child, None, VERSION_GONE)

    deleted_id = world.version_id(pkg, index.digest, "deleted")
    expect(world.client("owner").post(f"{pkg.version_path(deleted_id)}/restore"), 204)
    assert world.versions(pkg, "deleted") == []
    world.assert_pulls("owner", pkg.full, index, "multi")
    for child in (x, y):
        world.assert_pulls("owner", pkg.full, child, None)


def test_deleting_an_index_takes_its_unshared_children_and_restore_brings_them_back(
    world: World, indexed: tuple[Pkg, dict[str, Image]]
) -> None:
    pkg, images = indexed
    multi = world.version_id(pkg, images["multi"].digest)

    expect(world.client("owner").delete(pkg.version_path(multi)), 204)

    deleted = {v["name"] for v in world.versions(pkg, "deleted")}
    assert deleted == {images["multi"].digest, images["a"].digest}
    active = {v["name"] for v in world.versions(pkg)}
    assert active == {images[k].digest for k in ("b", "c", "other")}
    world.assert_not_pullable("owner", pkg.full, images["multi"], "multi", VERSION_GONE)
    world.assert_not_pullable("owner", pkg.full, images["a"], None, VERSION_GONE)
    for key in ("b", "c"):
        world.assert_pulls("owner", pkg.full, images[key], None)
    world.assert_pulls("owner", pkg.full, images["other"], "other")

    expect(world.client("owner").post(f"{pkg.version_path(multi)}/restore"), 204)

    assert world.versions(pkg, "deleted") == []
    world.assert_pulls("owner", pkg.full, images["multi"], "multi")
    world.assert_pulls("owner", pkg.full, images["a"], None)


def test_registry_delete_of_an_index_follows_the_same_rules(
    world: World, indexed: tuple[Pkg, dict[str, Image]]
) -> None:
    pkg, images = indexed
    resp = world.client("owner").delete(f"/v2/{pkg.full}/manifests/{images['other'].digest}")
    expect(resp, 202)

    deleted = {v["name"]: v["id"] for v in world.versions(pkg, "deleted")}
    assert set(deleted) == {images["other"].digest, images["c"].digest}
    world.assert_not_pullable("owner", pkg.full, images["c"], None, VERSION_GONE)
    world.assert_pulls("owner", pkg.full, images["b"], None)  # multi still uses it
    world.assert_pulls("owner", pkg.full, images["multi"], "multi")

    restore = f"{pkg.version_path(deleted[images['other'].digest])}/restore"
    expect(world.client("owner").post(restore), 204)
    world.assert_pulls("owner", pkg.full, images["other"], "other")
    world.assert_pulls("owner", pkg.full, images["c"], None)


def test_deleting_the_whole_package_with_indexes_and_restoring_it(
    world: World, indexed: tuple[Pkg, dict[str, Image]]
) -> None:
    pkg, images = indexed
    expect(world.client("owner").delete(pkg.path), 204)
    for key, image in images.items():
        world.assert_not_pullable("owner", pkg.full, image, key if len(key) > 1 else None, GONE)
    expect(world.client("owner").post(f"{pkg.path}/restore"), 204)
    for key, image in images.items():
        world.assert_pulls("owner", pkg.full, image, key if len(key) > 1 else None)
    assert expect(world.client("owner").get(pkg.path), 200).json()["version_count"] == 5
