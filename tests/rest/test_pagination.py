"""Pagination of the REST lists (GitHub's ``page``/``per_page`` and ``Link`` header) against a
real server: package lists and version lists.

The world: organization ``pg`` owned by ``olga`` with eight packages, ``a-1`` ... ``a-7`` (one
version each; ``a-2``, ``a-4``, ``a-6`` and ``a-7`` are public, the rest private) and ``many``
(private, seven versions pushed one after the other). ``otto`` is an outsider: he sees the four
public packages only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from kit import Operator
from resttest import Pusher, Rest, describe, links, package_path, query_of

ORG = "pg"
NAMES = [f"a-{i}" for i in range(1, 8)]
PUBLIC = ["a-2", "a-4", "a-6", "a-7"]
ALL = [*NAMES, "many"]  # bytewise name order
VERSIONS = 7
LIST = f"/orgs/{ORG}/packages"
MANY = package_path(f"/orgs/{ORG}", "many") + "/versions"


@dataclass
class World:
    rest: Rest
    olga: str
    otto: str
    #: digests of ``many``'s versions, oldest first
    pushed: list[str]


@pytest.fixture(scope="module")
def world(server: Any, rest: Rest) -> Iterator[World]:
    setup = Operator()
    setup.add("user", "create", "olga").add("user", "create", "otto")
    setup.add("org", "create", ORG, "--owner", "olga")
    setup.pat("olga", "olga", "write:packages")
    setup.pat("otto", "otto", "read:packages")
    tokens = setup.run(server).tokens
    pusher = Pusher(server.url, tokens["olga"])
    try:
        for name in NAMES:
            pusher.image(f"{ORG}/{name}", "latest")
        pushed = [pusher.image(f"{ORG}/many", f"v{i}").digest for i in range(VERSIONS)]
    finally:
        pusher.close()
    more = Operator()
    for name in PUBLIC:
        more.add("package", "set-visibility", f"{ORG}/{name}", "public")
    more.run(server)
    yield World(rest, tokens["olga"], tokens["otto"], pushed)


def _walk(world: World, first: httpx.Response, token: str) -> list[list[dict[str, Any]]]:
    """Follow ``rel="next"`` from ``first``; every page's items."""
    pages = []
    resp = first
    for _ in range(50):
        assert resp.status_code == 200, describe(resp)
        pages.append(resp.json())
        following = links(resp).get("next")
        if following is None:
            return pages
        resp = world.rest.get_url(following, token)
    raise AssertionError("the Link header never ends")


@pytest.mark.parametrize("path", [LIST, MANY])
def test_per_page_and_page_are_checked(world: World, path: str) -> None:
    params: dict[str, str | int] = {"package_type": "container"} if path == LIST else {}
    for bad in ({"per_page": 0}, {"per_page": 101}, {"per_page": "x"}, {"page": 0}, {"page": -1}):
        resp = world.rest.request("GET", path, world.olga, params={**params, **bad})
        assert resp.status_code == 422, describe(resp)
        assert resp.json()["message"] == "Validation Failed", describe(resp)
    one = world.rest.request("GET", path, world.olga, params={**params, "per_page": 1})
    assert one.status_code == 200, describe(one)
    assert len(one.json()) == 1
    most = world.rest.request("GET", path, world.olga, params={**params, "per_page": 100})
    assert most.status_code == 200, describe(most)
    assert len(most.json()) == (len(ALL) if path == LIST else VERSIONS)
    assert "link" not in most.headers, describe(most)


def test_default_page_size_holds_everything_here(world: World) -> None:
    resp = world.rest.get(LIST, world.olga, package_type="container")
    assert resp.status_code == 200, describe(resp)
    assert [p["name"] for p in resp.json()] == ALL
    assert "link" not in resp.headers, describe(resp)


def test_walking_package_pages(world: World) -> None:
    first = world.rest.get(LIST, world.olga, package_type="container", per_page=3)
    rels = links(first)
    assert set(rels) == {"next", "last"}, describe(first)
    assert query_of(rels["next"]) == {"package_type": "container", "page": "2", "per_page": "3"}
    assert query_of(rels["last"])["page"] == "3"
    pages = _walk(world, first, world.olga)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [p["name"] for page in pages for p in page] == ALL


def test_links_of_middle_and_last_pages(world: World) -> None:
    middle = world.rest.get(LIST, world.olga, package_type="container", per_page=3, page=2)
    rels = links(middle)
    assert set(rels) == {"next", "last", "first", "prev"}, describe(middle)
    assert {rel: query_of(url)["page"] for rel, url in rels.items()} == {
        "next": "3",
        "last": "3",
        "first": "1",
        "prev": "1",
    }
    last = world.rest.get(LIST, world.olga, package_type="container", per_page=3, page=3)
    rels = links(last)
    assert set(rels) == {"first", "prev"}, describe(last)
    assert query_of(rels["prev"])["page"] == "2"
    assert [p["name"] for p in last.json()] == ALL[6:]
    for url in rels.values():
        assert query_of(url)["package_type"] == "container"
        assert query_of(url)["per_page"] == "3"


def test_page_past_the_end_is_empty(world: World) -> None:
    resp = world.rest.get(LIST, world.olga, package_type="container", per_page=3, page=9)
    assert resp.status_code == 200, describe(resp)
    assert resp.json() == []
    assert "next" not in links(resp), describe(resp)


def test_pages_count_only_what_the_caller_may_see(world: World) -> None:
    first = world.rest.get(LIST, world.otto, package_type="container", per_page=2)
    rels = links(first)
    assert query_of(rels["last"])["page"] == "2", describe(first)
    pages = _walk(world, first, world.otto)
    assert [p["name"] for page in pages for p in page] == PUBLIC
    assert [len(p) for p in pages] == [2, 2]


def test_pages_of_a_visibility_filter(world: World) -> None:
    first = world.rest.get(
        LIST, world.olga, package_type="container", visibility="private", per_page=2
    )
    rels = links(first)
    assert query_of(rels["next"])["visibility"] == "private", describe(first)
    assert query_of(rels["last"])["page"] == "2", describe(first)
    pages = _walk(world, first, world.olga)
    private = [name for name in ALL if name not in PUBLIC]
    assert [p["name"] for page in pages for p in page] == private


def test_versions_newest_first_across_pages(world: World) -> None:
    first = world.rest.get(MANY, world.olga, per_page=3)
    assert query_of(links(first)["last"])["page"] == "3", describe(first)
    pages = _walk(world, first, world.olga)
    assert [len(p) for p in pages] == [3, 3, 1]
    versions = [v for page in pages for v in page]
    assert [v["name"] for v in versions] == list(reversed(world.pushed))
    ids = [v["id"] for v in versions]
    assert ids == sorted(ids, reverse=True)
    created = [datetime.fromisoformat(v["created_at"].replace("Z", "+00:00")) for v in versions]
    assert created == sorted(created, reverse=True)
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "many"), world.olga)
    assert package["version_count"] == VERSIONS


def test_version_pages_are_hidden_like_the_package(world: World) -> None:
    resp = world.rest.get(MANY, world.otto, per_page=3)
    assert resp.status_code == 404, describe(resp)
    assert "link" not in resp.headers, describe(resp)
