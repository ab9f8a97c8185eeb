"""The JSON the REST API answers with: GitHub's package and package-version fields, their
values, and URLs that lead back to the same objects (against a real server).

The world: organization ``shapes`` (owner ``uma``) with repository ``shapes/src``; packages
``shapes/web`` (tags ``1.0`` and ``latest``, its source label names ``shapes/src``: linked),
``shapes/team/api`` (a name with a slash) and ``uma/tool`` (a user's, not linked).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from kit import Operator
from resttest import SOURCE, Pushed, Pusher, Rest, describe, package_path

ORG = "shapes"
PACKAGE_FIELDS = {
    "id",
    "name",
    "package_type",
    "owner",
    "version_count",
    "visibility",
    "url",
    "html_url",
    "repository",
    "created_at",
    "updated_at",
}
VERSION_FIELDS = {
    "id",
    "name",
    "url",
    "package_html_url",
    "html_url",
    "license",
    "description",
    "created_at",
    "updated_at",
    "deleted_at",
    "metadata",
}
OWNER_FIELDS = {"login", "id", "type", "url", "html_url"}


@dataclass
class World:
    rest: Rest
    base: str
    token: str
    web: Pushed
    api: Pushed
    tool: Pushed


@pytest.fixture(scope="module")
def world(server: Any, rest: Rest) -> Iterator[World]:
    setup = Operator()
    setup.add("user", "create", "uma")
    setup.add("org", "create", ORG, "--owner", "uma")
    setup.add("repo", "create", f"{ORG}/src")
    setup.pat("uma", "uma", "write:packages")
    tokens = setup.run(server).tokens
    pusher = Pusher(server.url, tokens["uma"])
    try:
        web = pusher.image(f"{ORG}/web", "1.0", labels={SOURCE: f"{server.url}/{ORG}/src"})
        tagged = pusher.http.put(
            f"/v2/{ORG}/web/manifests/latest",
            content=web.body,
            headers={"Content-Type": web.media_type},
        )
        assert tagged.status_code == 201, describe(tagged)
        api = pusher.image(f"{ORG}/team/api", "v1")
        tool = pusher.image("uma/tool", "v1")
    finally:
        pusher.close()
    yield World(rest, server.url, tokens["uma"], web, api, tool)


def _when(value: Any) -> datetime:
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


def _check_owner(owner: dict[str, Any], base: str, login: str, type_: str) -> None:
    assert set(owner) >= OWNER_FIELDS, owner
    assert owner["login"] == login
    assert owner["type"] == type_
    assert isinstance(owner["id"], int) and owner["id"] > 0, owner
    assert owner["url"] == f"{base}/api/v3/users/{login}"
    assert owner["html_url"] == f"{base}/{login}"


def test_org_package_fields(world: World) -> None:
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "web"), world.token)
    assert set(package) >= PACKAGE_FIELDS, sorted(package)
    assert isinstance(package["id"], int)
    assert package["name"] == "web"
    assert package["package_type"] == "container"
    assert package["version_count"] == 1
    assert package["visibility"] == "private"
    assert package["url"] == f"{world.base}/api/v3/orgs/{ORG}/packages/container/web"
    assert package["html_url"] == f"{world.base}/orgs/{ORG}/packages/container/package/web"
    _check_owner(package["owner"], world.base, ORG, "Organization")
    assert _when(package["updated_at"]) >= _when(package["created_at"])


def test_linked_package_has_its_repository(world: World) -> None:
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "web"), world.token)
    repository = package["repository"]
    assert repository is not None, package
    assert isinstance(repository["id"], int)
    assert repository["name"] == "src"
    assert repository["full_name"] == f"{ORG}/src"
    assert repository["private"] is False
    assert repository["html_url"] == f"{world.base}/{ORG}/src"
    assert repository["url"] == f"{world.base}/api/v3/repos/{ORG}/src"
    _check_owner(repository["owner"], world.base, ORG, "Organization")
    assert repository["owner"]["id"] == package["owner"]["id"]


def test_user_package_fields(world: World) -> None:
    package = world.rest.ok(package_path("/users/uma", "tool"), world.token)
    assert set(package) >= PACKAGE_FIELDS, sorted(package)
    assert package["url"] == f"{world.base}/api/v3/users/uma/packages/container/tool"
    assert package["html_url"] == f"{world.base}/users/uma/packages/container/package/tool"
    assert package["repository"] is None
    _check_owner(package["owner"], world.base, "uma", "User")
    org_package = world.rest.ok(package_path(f"/orgs/{ORG}", "web"), world.token)
    assert package["owner"]["id"] != org_package["owner"]["id"]


def test_version_fields(world: World) -> None:
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "web"), world.token)
    versions = world.rest.ok(package_path(f"/orgs/{ORG}", "web") + "/versions", world.token)
    assert len(versions) == 1
    version = versions[0]
    assert set(version) >= VERSION_FIELDS, sorted(version)
    assert isinstance(version["id"], int)
    assert version["name"] == world.web.digest
    assert version["url"] == f"{package['url']}/versions/{version['id']}"
    assert version["package_html_url"] == package["html_url"]
    assert version["html_url"] == f"{package['html_url']}/{version['id']}"
    assert version["deleted_at"] is None
    assert version["license"] is None
    assert version["description"] is None
    assert _when(version["updated_at"]) >= _when(version["created_at"])
    assert version["metadata"]["package_type"] == "container"
    assert version["metadata"]["container"]["tags"] == ["1.0", "latest"]


def test_package_url_round_trips(world: World) -> None:
    for scope, name in (
        (f"/orgs/{ORG}", "web"),
        (f"/orgs/{ORG}", "team/api"),
        ("/users/uma", "tool"),
    ):
        package = world.rest.ok(package_path(scope, name), world.token)
        again = world.rest.get_url(package["url"], world.token)
        assert again.status_code == 200, describe(again)
        assert again.json() == package
        listed = world.rest.ok(f"{scope}/packages", world.token, package_type="container")
        assert package in listed


def test_version_url_round_trips(world: World) -> None:
    for scope, name, pushed in (
        (f"/orgs/{ORG}", "web", world.web),
        (f"/orgs/{ORG}", "team/api", world.api),
        ("/users/uma", "tool", world.tool),
    ):
        versions = world.rest.ok(package_path(scope, name) + "/versions", world.token)
        assert [v["name"] for v in versions] == [pushed.digest]
        again = world.rest.get_url(versions[0]["url"], world.token)
        assert again.status_code == 200, describe(again)
        assert again.json() == versions[0]


def test_slash_name_is_kept_whole(world: World) -> None:
    package = world.rest.ok(package_path(f"/orgs/{ORG}", "team/api"), world.token)
    assert package["name"] == "team/api"
    assert package["url"] == f"{world.base}/api/v3/orgs/{ORG}/packages/container/team%2Fapi"
    lower = world.rest.get(f"/orgs/{ORG}/packages/container/team%2fapi", world.token)
    assert lower.status_code == 200, describe(lower)
    assert lower.json() == package
    # unencoded, the slash splits the path: that is another route (or none)
    split = world.rest.get(f"/orgs/{ORG}/packages/container/team/api", world.token)
    assert split.status_code == 404, describe(split)


def test_owner_url_round_trips(world: World) -> None:
    """``owner.url`` is ``/users/LOGIN`` for organizations too (as on GitHub, where
    ``GET /users/{org}`` answers with the organization)."""
    for scope, name in ((f"/orgs/{ORG}", "web"), ("/users/uma", "tool")):
        owner = world.rest.ok(package_path(scope, name), world.token)["owner"]
        again = world.rest.get_url(owner["url"], world.token)
        assert again.status_code == 200, describe(again)
        assert {k: again.json().get(k) for k in OWNER_FIELDS} == {k: owner[k] for k in OWNER_FIELDS}


def test_repository_url_round_trips(world: World) -> None:
    repository = world.rest.ok(package_path(f"/orgs/{ORG}", "web"), world.token)["repository"]
    again = world.rest.get_url(repository["url"], world.token)
    assert again.status_code == 200, describe(again)
    assert again.json()["owner"]["type"] == repository["owner"]["type"], describe(again)
    assert again.json() == repository


def test_openapi_documents_the_read_endpoints(world: World) -> None:
    resp = world.rest.get("/openapi.json")
    assert resp.status_code == 200, describe(resp)
    paths = resp.json()["paths"]
    for path in (
        "/user/packages",
        "/users/{username}/packages",
        "/orgs/{org}/packages",
        "/orgs/{org}/packages/{package_type}/{package_name}",
        "/orgs/{org}/packages/{package_type}/{package_name}/versions",
        "/orgs/{org}/packages/{package_type}/{package_name}/versions/{package_version_id}",
        "/user/packages/{package_type}/{package_name}/versions/{package_version_id}",
        "/users/{username}/packages/{package_type}/{package_name}/versions",
    ):
        assert "get" in paths.get(path, {}), path


def test_site_admins_show_as_site_admins(server: Any, world: World) -> None:
    """``site_admin`` is true for a site administrator, as a user and as a package owner (as on
    GitHub), and false for everyone else."""
    setup = Operator().add("user", "create", "sadie", "--admin")
    tokens = setup.pat("sadie", "sadie", "write:packages").run(server)
    pusher = Pusher(server.url, tokens["sadie"])
    try:
        pusher.image("sadie/thing", "v1")
    finally:
        pusher.close()
    assert world.rest.ok("/users/sadie", world.token)["site_admin"] is True
    assert world.rest.ok("/user", tokens["sadie"])["site_admin"] is True
    package = world.rest.ok(package_path("/users/sadie", "thing"), tokens["sadie"])
    assert package["owner"]["site_admin"] is True
    assert world.rest.ok("/users/uma", world.token)["site_admin"] is False
    own = world.rest.ok(package_path("/users/uma", "tool"), world.token)
    assert own["owner"]["site_admin"] is False
