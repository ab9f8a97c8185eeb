"""Download counts in the REST API: every manifest GET (by digest or by tag) counts once on the
version it returned; HEADs do not count (real server).

Counts are gathered in memory and flushed every ``download_flush_interval`` seconds (0.2 on the
test server), so the tests poll. To know that *everything* sent so far has been flushed, a test
ends with one GET of a sentinel image and waits for the sentinel's count: the server (one
worker) flushes all pending counts at once, so what was counted before is written by then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kit import Operator
from resttest import Pushed, Pusher, Rest, child_entry, describe, package_path, poll

ORG = "dl"


@dataclass
class World:
    rest: Rest
    token: str
    push: Pusher

    def counts(self, name: str) -> dict[str, int]:
        """digest -> download_count of every active version of ``ORG/name``."""
        versions = self.rest.ok(
            package_path(f"/orgs/{ORG}", name) + "/versions", self.token, per_page=100
        )
        return {v["name"]: v["metadata"]["container"]["download_count"] for v in versions}

    def settle(self, name: str) -> None:
        """Push a sentinel into ``ORG/name``, GET it once, wait until that GET is counted."""
        sentinel = self.push.image(f"{ORG}/{name}")
        self.get(name, sentinel.digest)

        def flushed() -> bool | None:
            return True if self.counts(name).get(sentinel.digest) == 1 else None

        poll(flushed)

    def get(self, name: str, reference: str, times: int = 1) -> None:
        for _ in range(times):
            resp = self.push.get_manifest(f"{ORG}/{name}", reference)
            assert resp.status_code == 200, describe(resp)

    def head(self, name: str, reference: str, times: int = 1) -> None:
        for _ in range(times):
            resp = self.push.head_manifest(f"{ORG}/{name}", reference)
            assert resp.status_code == 200, describe(resp)


@pytest.fixture(scope="module")
def world(server: Any, rest: Rest) -> Iterator[World]:
    setup = Operator()
    setup.add("user", "create", "dora")
    setup.add("org", "create", ORG, "--owner", "dora")
    setup.pat("dora", "dora", "write:packages")
    tokens = setup.run(server).tokens
    pusher = Pusher(server.url, tokens["dora"])
    yield World(rest, tokens["dora"], pusher)
    pusher.close()


def test_new_versions_have_no_downloads(world: World) -> None:
    image = world.push.image(f"{ORG}/fresh", "v1")
    assert world.counts("fresh") == {image.digest: 0}
    assert world.rest.ok(package_path(f"/orgs/{ORG}", "fresh"), world.token)["download_count"] == 0


def test_gets_by_digest_count_and_heads_do_not(world: World) -> None:
    image = world.push.image(f"{ORG}/counted", "v1")
    world.head("counted", image.digest, 3)
    world.get("counted", image.digest, 4)
    world.head("counted", "v1", 2)
    world.settle("counted")
    assert world.counts("counted")[image.digest] == 4


def test_gets_by_tag_count_on_the_tagged_version(world: World) -> None:
    old = world.push.image(f"{ORG}/tagged", "stable")
    new = world.push.image(f"{ORG}/tagged", "latest")
    world.get("tagged", "latest", 3)
    world.get("tagged", "stable", 1)
    world.get("tagged", new.digest, 1)
    world.settle("tagged")
    counts = world.counts("tagged")
    assert counts[new.digest] == 4
    assert counts[old.digest] == 1


def test_one_version_by_id_shows_its_count(world: World) -> None:
    image = world.push.image(f"{ORG}/single", "v1")
    world.get("single", "v1", 2)
    world.settle("single")
    versions = world.rest.ok(package_path(f"/orgs/{ORG}", "single") + "/versions", world.token)
    by_digest = {v["name"]: v for v in versions}
    one = world.rest.get_url(by_digest[image.digest]["url"], world.token)
    assert one.status_code == 200, describe(one)
    assert one.json()["metadata"]["container"]["download_count"] == 2


def test_package_count_is_the_sum_of_its_versions(world: World) -> None:
    first = world.push.image(f"{ORG}/summed", "a")
    second = world.push.image(f"{ORG}/summed", "b")
    world.get("summed", first.digest, 2)
    world.get("summed", "b", 3)
    world.settle("summed")
    counts = world.counts("summed")
    assert (counts[first.digest], counts[second.digest]) == (2, 3)
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "summed"), world.token)
    assert package["download_count"] == sum(counts.values()) == 2 + 3 + 1  # + the sentinel


def test_index_gets_count_on_the_index_only(world: World) -> None:
    name = f"{ORG}/multi"
    amd64: Pushed = world.push.image(name)
    arm64: Pushed = world.push.image(name, platform={"os": "linux", "architecture": "arm64"})
    index = world.push.index(
        name, [child_entry(amd64, "linux", "amd64"), child_entry(arm64, "linux", "arm64")], "v1"
    )
    world.get("multi", "v1", 2)  # what a client does: the index, then its platform's image
    world.get("multi", arm64.digest, 2)
    world.settle("multi")
    counts = world.counts("multi")
    assert counts[index.digest] == 2
    assert counts[arm64.digest] == 2
    assert counts[amd64.digest] == 0
