"""Packages linked to source repositories by the ``org.opencontainers.image.source`` of what is
pushed, and the access they inherit, seen through the REST API and ``/v2`` (real server).

A source URL ``<base_url>/<owner>/<repo>`` naming a repository of the package's owner on this
server links the package. Linked by its first version, the package inherits the repository's
access (organizations: as their ``inherit_access_default`` says); linked later, whether it
inherits does not change.

The world: organization ``lnk`` (owner ``lena``) with repository ``lnk/app``; organization
``noinh`` (owner ``lena``, new packages do not inherit) with ``noinh/app``; organization
``far`` with ``far/app``; user ``uwe`` with repository ``uwe/site``. ``cole`` is a read
collaborator of ``lnk/app``, ``noinh/app`` and ``uwe/site``, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kit import Operator
from resttest import ACCEPT, SOURCE, Pushed, Pusher, Rest, describe, package_path

NOT_FOUND = "Package not found."


@dataclass
class World:
    rest: Rest
    base: str
    tokens: dict[str, str]
    lena: Pusher
    uwe: Pusher
    cole: Pusher

    def package(self, scope: str, name: str, token: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.rest.ok(
            package_path(scope, name), token or self.tokens["lena"]
        )
        return result

    def source(self, repository: str) -> dict[str, str]:
        return {SOURCE: f"{self.base}/{repository}"}


@pytest.fixture(scope="module")
def world(server: Any, rest: Rest) -> Iterator[World]:
    setup = Operator()
    for user in ("lena", "uwe", "cole"):
        setup.add("user", "create", user)
    for org in ("lnk", "noinh", "far"):
        setup.add("org", "create", org, "--owner", "lena")
    setup.add("org", "set-policy", "noinh", "--no-inherit")
    for repository in ("lnk/app", "noinh/app", "far/app", "uwe/site"):
        setup.add("repo", "create", repository)
    for repository in ("lnk/app", "noinh/app", "uwe/site"):
        setup.add("repo", "grant", repository, "cole", "read")
    setup.pat("lena", "lena", "write:packages")
    setup.pat("uwe", "uwe", "write:packages")
    setup.pat("cole", "cole", "read:packages")
    tokens = setup.run(server).tokens
    pushers = [Pusher(server.url, tokens[who]) for who in ("lena", "uwe", "cole")]
    yield World(rest, server.url, tokens, *pushers)
    for pusher in pushers:
        pusher.close()


def _cole_reads(world: World, scope: str, name: str, pushed: Pushed, repo_name: str) -> None:
    """cole reads the package through the REST API (package, versions) and pulls it."""
    token = world.tokens["cole"]
    package = world.rest.get(package_path(scope, name), token)
    assert package.status_code == 200, describe(package)
    versions = world.rest.get(package_path(scope, name) + "/versions", token)
    assert versions.status_code == 200, describe(versions)
    assert pushed.digest in [v["name"] for v in versions.json()]
    pulled = world.cole.get_manifest(repo_name, pushed.digest)
    assert pulled.status_code == 200, describe(pulled)
    assert pulled.content == pushed.body


def _cole_cannot_read(world: World, scope: str, name: str, pushed: Pushed, repo_name: str) -> None:
    token = world.tokens["cole"]
    for path in (package_path(scope, name), package_path(scope, name) + "/versions"):
        resp = world.rest.get(path, token)
        assert resp.status_code == 404, describe(resp)
        assert resp.json()["message"] == NOT_FOUND, describe(resp)
    listed = world.rest.ok(f"{scope}/packages", token, package_type="container")
    assert name not in [p["name"] for p in listed]
    pulled = world.cole.http.get(
        f"/v2/{repo_name}/manifests/{pushed.digest}", headers={"Accept": ACCEPT}
    )
    assert pulled.status_code == 404, describe(pulled)


def test_first_version_links_and_inherits(world: World) -> None:
    pushed = world.lena.image("lnk/first", "v1", labels=world.source("lnk/app"))
    package = world.package("/orgs/lnk", "first")
    assert package["visibility"] == "private"
    assert package["repository"] is not None, package
    assert package["repository"]["full_name"] == "lnk/app"
    assert package["inherit_access"] is True
    _cole_reads(world, "/orgs/lnk", "first", pushed, "lnk/first")
    listed = world.rest.ok("/orgs/lnk/packages", world.tokens["cole"], package_type="container")
    assert "first" in [p["name"] for p in listed]


def test_annotation_source_links_too(world: World) -> None:
    pushed = world.lena.image("lnk/annotated", "v1", annotations=world.source("lnk/app"))
    assert world.package("/orgs/lnk", "annotated")["repository"]["full_name"] == "lnk/app"
    _cole_reads(world, "/orgs/lnk", "annotated", pushed, "lnk/annotated")


def test_first_version_of_a_user_package_links_and_inherits(world: World) -> None:
    pushed = world.uwe.image("uwe/web", "v1", labels=world.source("uwe/site"))
    package = world.package("/users/uwe", "web", world.tokens["uwe"])
    assert package["repository"]["full_name"] == "uwe/site"
    assert package["repository"]["owner"]["type"] == "User"
    assert package["inherit_access"] is True
    _cole_reads(world, "/users/uwe", "web", pushed, "uwe/web")


def test_org_default_off_links_without_inheriting(world: World) -> None:
    pushed = world.lena.image("noinh/tool", "v1", labels=world.source("noinh/app"))
    package = world.package("/orgs/noinh", "tool")
    assert package["repository"]["full_name"] == "noinh/app"
    assert package["inherit_access"] is False
    _cole_cannot_read(world, "/orgs/noinh", "tool", pushed, "noinh/tool")


@pytest.mark.parametrize(
    "source",
    [
        "far/app",  # a repository of another owner
        "lnk/nothing",  # no such repository
        "https://github.com/lnk/app",  # another host
    ],
)
def test_sources_that_do_not_link(world: World, source: str) -> None:
    name = "x-" + source.replace("/", "-").replace(":", "").replace(".", "")
    url = source if "://" in source else f"{world.base}/{source}"
    pushed = world.lena.image(f"lnk/{name}", "v1", labels={SOURCE: url})
    package = world.package("/orgs/lnk", name)
    assert package["repository"] is None, package
    assert package["source_url"] == url
    _cole_cannot_read(world, "/orgs/lnk", name, pushed, f"lnk/{name}")


def test_linked_later_does_not_inherit(world: World) -> None:
    first = world.lena.image("lnk/later", "v1")
    before = world.package("/orgs/lnk", "later")
    assert before["repository"] is None
    second = world.lena.image("lnk/later", "v2", labels=world.source("lnk/app"))
    after = world.package("/orgs/lnk", "later")
    assert after["repository"] is not None, after
    assert after["repository"]["full_name"] == "lnk/app"
    for pushed in (first, second):
        _cole_cannot_read(world, "/orgs/lnk", "later", pushed, "lnk/later")
    assert after["inherit_access"] is False, after
    assert before["inherit_access"] is False, before


def test_user_package_linked_later_does_not_inherit(world: World) -> None:
    first = world.uwe.image("uwe/blog", "v1")
    before = world.package("/users/uwe", "blog", world.tokens["uwe"])
    world.uwe.image("uwe/blog", "v2", labels=world.source("uwe/site"))
    after = world.package("/users/uwe", "blog", world.tokens["uwe"])
    assert after["repository"]["full_name"] == "uwe/site"
    _cole_cannot_read(world, "/users/uwe", "blog", first, "uwe/blog")
    assert after["inherit_access"] is False, after
    assert before["inherit_access"] is False, before


def test_a_later_source_of_another_owner_changes_no_link(world: World) -> None:
    world.lena.image("lnk/sticky", "v1", labels=world.source("lnk/app"))
    world.lena.image("lnk/sticky", "v2", labels=world.source("far/app"))
    package = world.package("/orgs/lnk", "sticky")
    assert package["repository"]["full_name"] == "lnk/app"
    assert package["source_url"] == f"{world.base}/far/app"
