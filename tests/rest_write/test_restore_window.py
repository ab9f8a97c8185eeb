"""The restore window and the purge, on servers of their own: one with a 2 s window and no purge
in sight (what was deleted stays, but can no longer be restored), one with a 1 s window purged
twice a second (what was deleted is gone for good; its name is free for a new package)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from rwkit import Image, Pkg, World, describe, expect, message, oci_code, unique, wait_for

#: A namespace the conftest's test user owns on every server.
NAMESPACE = "api"
EXPIRY = {"restore_window": 2, "purge_interval": 3600}
PURGE = {"restore_window": 1, "purge_interval": 0.5}


@dataclass
class Deleted:
    """What was deleted on one server: a whole package, and one version of another."""

    world: World
    package: Pkg
    package_image: Image
    holder: Pkg
    version: Image
    version_id: int
    kept: Image
    deleted_at: float


def delete_some(world: World) -> Deleted:
    package = Pkg(NAMESPACE, unique("whole"))
    package_image = world.push_image("admin", package.full, "v1")
    holder = Pkg(NAMESPACE, unique("holder"))
    version = world.push_image("admin", holder.full, "old")
    kept = world.push_image("admin", holder.full, "kept")
    version_id = world.version_id(holder, version.digest)
    expect(world.client("admin").delete(package.path), 204)
    expect(world.client("admin").delete(holder.version_path(version_id)), 204)
    return Deleted(
        world, package, package_image, holder, version, version_id, kept, time.monotonic()
    )


def past_window(deleted: Deleted, window: float) -> None:
    """Sleep until the restore window of what was deleted is over (with a margin)."""
    left = deleted.deleted_at + window + 0.5 - time.monotonic()
    if left > 0:
        time.sleep(left)


@pytest.fixture(scope="module")
def servers(
    server_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Deleted]]:
    """Both servers (started side by side), each with its deletions done."""
    tmp_path_factory.getbasetemp()  # made once, before two threads ask for it
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda s: server_factory(**s), (EXPIRY, PURGE)))
    result = {}
    for key, server in zip(("expiry", "purge"), started, strict=True):
        world = World(server.url, {"admin": server.token}, server.user, me="admin")
        result[key] = delete_some(world)
    yield result
    for deleted in result.values():
        deleted.world.close()


def test_within_the_window_a_restore_works(servers: dict[str, Deleted]) -> None:
    world = servers["expiry"].world
    pkg = Pkg(NAMESPACE, unique("quick"))
    image = world.push_image("admin", pkg.full, "v1")
    expect(world.client("admin").delete(pkg.path), 204)
    expect(world.client("admin").post(f"{pkg.path}/restore"), 204)
    world.assert_pulls("admin", pkg.full, image, "v1")


def test_after_the_window_nothing_can_be_restored(servers: dict[str, Deleted]) -> None:
    deleted = servers["expiry"]
    world = deleted.world
    past_window(deleted, EXPIRY["restore_window"])

    resp = expect(world.client("admin").post(f"{deleted.package.path}/restore"), 404)
    assert "can no longer be restored" in message(resp), describe(resp)
    restore = f"{deleted.holder.version_path(deleted.version_id)}/restore"
    resp = expect(world.client("admin").post(restore), 404)
    assert "can no longer be restored" in message(resp), describe(resp)

    # Not purged yet (the purge runs hourly here): still listed as deleted, still not pullable.
    assert [v["id"] for v in world.versions(deleted.holder, "deleted")] == [deleted.version_id]
    resp = world.pull("admin", deleted.holder.full, deleted.version.digest)
    assert resp.status_code == 404 and oci_code(resp) == "MANIFEST_UNKNOWN", describe(resp)
    resp = world.pull("admin", deleted.package.full, "v1")
    assert resp.status_code == 404 and oci_code(resp) == "NAME_UNKNOWN", describe(resp)
    world.assert_pulls("admin", deleted.holder.full, deleted.kept, "kept")


def test_the_purge_removes_deleted_content_for_good(servers: dict[str, Deleted]) -> None:
    deleted = servers["purge"]
    world = deleted.world
    past_window(deleted, PURGE["restore_window"])
    wait_for(
        lambda: world.versions(deleted.holder, "deleted") == [],
        "the purge to remove the deleted version",
    )

    restore = f"{deleted.holder.version_path(deleted.version_id)}/restore"
    expect(world.client("admin").post(restore), 404)
    expect(world.client("admin").get(deleted.holder.version_path(deleted.version_id)), 404)
    expect(world.client("admin").post(f"{deleted.package.path}/restore"), 404)
    world.assert_pulls("admin", deleted.holder.full, deleted.kept, "kept")
    assert world.tags("admin", deleted.holder.full) == ["kept"]

    # The name is free: a new push makes a new package, which nothing old comes back into.
    image = world.push_image("admin", deleted.package.full, "v1")
    package = expect(world.client("admin").get(deleted.package.path), 200).json()
    assert package["version_count"] == 1
    world.assert_pulls("admin", deleted.package.full, image, "v1")
    resp = world.pull("admin", deleted.package.full, deleted.package_image.digest)
    assert resp.status_code == 404 and oci_code(resp) == "MANIFEST_UNKNOWN", describe(resp)
    # Nothing deleted is left under the name (404, or 409 "not deleted" for the live one).
    resp = world.client("admin").post(f"{deleted.package.path}/restore")
    assert resp.status_code in (404, 409), describe(resp)
    after = expect(world.client("admin").get(deleted.package.path), 200).json()
    assert (after["id"], after["version_count"]) == (package["id"], 1)
