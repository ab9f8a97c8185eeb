"""Package and version metadata as the REST API shows it, from what was pushed: description,
license and source from index annotations, manifest annotations and image config labels (first
wins, cut to 512/256 characters), the newest version speaking for the package (referrers
don't), platforms, index children and attestations. Against a real server.

Each test pushes to packages of its own in organization ``meta`` (owner ``mia``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kit import Operator
from resttest import (
    DESCRIPTION,
    LICENSES,
    SOURCE,
    Pushed,
    Pusher,
    Rest,
    attestation_entry,
    child_entry,
    describe,
    package_path,
)

ORG = "meta"


@dataclass
class World:
    rest: Rest
    token: str
    push: Pusher

    def package(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.rest.ok(package_path(f"/orgs/{ORG}", name), self.token)
        return result

    def versions(self, name: str) -> dict[str, dict[str, Any]]:
        """digest -> version, every active version of the package."""
        found = self.rest.ok(
            package_path(f"/orgs/{ORG}", name) + "/versions", self.token, per_page=100
        )
        return {v["name"]: v for v in found}


@pytest.fixture(scope="module")
def world(server: Any, rest: Rest) -> Iterator[World]:
    setup = Operator()
    setup.add("user", "create", "mia")
    setup.add("org", "create", ORG, "--owner", "mia")
    setup.pat("mia", "mia", "write:packages,delete:packages")
    tokens = setup.run(server).tokens
    pusher = Pusher(server.url, tokens["mia"])
    yield World(rest, tokens["mia"], pusher)
    pusher.close()


def _fields(obj: dict[str, Any]) -> tuple[Any, Any]:
    return obj["description"], obj["license"]


# -- where each field comes from ----------------------------------------------------------------


def test_config_labels(world: World) -> None:
    name = f"{ORG}/labels"
    image = world.push.image(
        name,
        "v1",
        labels={
            DESCRIPTION: "from the labels",
            LICENSES: "MIT",
            SOURCE: "https://example.com/meta/labels",
        },
    )
    version = world.versions("labels")[image.digest]
    assert _fields(version) == ("from the labels", "MIT")
    package = world.package("labels")
    assert _fields(package) == ("from the labels", "MIT")
    assert package["source_url"] == "https://example.com/meta/labels"
    assert package["repository"] is None  # not a repository of this server


def test_manifest_annotations_beat_labels_field_by_field(world: World) -> None:
    name = f"{ORG}/annotated"
    image = world.push.image(
        name,
        "v1",
        labels={DESCRIPTION: "label description", LICENSES: "GPL-3.0-only"},
        annotations={DESCRIPTION: "annotation description"},
    )
    version = world.versions("annotated")[image.digest]
    assert _fields(version) == ("annotation description", "GPL-3.0-only")
    assert _fields(world.package("annotated")) == ("annotation description", "GPL-3.0-only")


def test_index_annotations_beat_its_children(world: World) -> None:
    name = f"{ORG}/multi"
    amd64 = world.push.image(name, labels={DESCRIPTION: "amd64 label", LICENSES: "Apache-2.0"})
    arm64 = world.push.image(
        name,
        platform={"os": "linux", "architecture": "arm64"},
        annotations={DESCRIPTION: "arm64 annotation", LICENSES: "BSD-3-Clause"},
    )
    index = world.push.index(
        name,
        [child_entry(amd64, "linux", "amd64"), child_entry(arm64, "linux", "arm64")],
        "v1",
        annotations={DESCRIPTION: "index annotation"},
    )
    versions = world.versions("multi")
    # the index says its description; its license comes from its first child
    assert _fields(versions[index.digest]) == ("index annotation", "Apache-2.0")
    assert _fields(versions[amd64.digest]) == ("amd64 label", "Apache-2.0")
    assert _fields(versions[arm64.digest]) == ("arm64 annotation", "BSD-3-Clause")
    assert _fields(world.package("multi")) == ("index annotation", "Apache-2.0")


def test_index_without_metadata_takes_its_first_real_child(world: World) -> None:
    name = f"{ORG}/attested"
    first = world.push.image(name, labels={DESCRIPTION: "first child", LICENSES: "MIT"})
    second = world.push.image(
        name,
        platform={"os": "linux", "architecture": "arm64"},
        labels={DESCRIPTION: "second child", LICENSES: "0BSD"},
    )
    attestation = world.push.attestation(name)
    index = world.push.index(
        name,
        [
            attestation_entry(attestation, first),  # listed first, but an attestation
            child_entry(first, "linux", "amd64"),
            child_entry(second, "linux", "arm64"),
        ],
        "v1",
    )
    versions = world.versions("attested")
    assert _fields(versions[index.digest]) == ("first child", "MIT")
    assert _fields(world.package("attested")) == ("first child", "MIT")


@pytest.mark.parametrize(
    ("where", "field", "limit"),
    [
        ("labels", DESCRIPTION, 512),
        ("annotations", DESCRIPTION, 512),
        ("labels", LICENSES, 256),
        ("annotations", LICENSES, 256),
    ],
)
def test_long_values_are_cut(world: World, where: str, field: str, limit: int) -> None:
    short = f"cut-{where}-{'d' if field == DESCRIPTION else 'l'}"
    name = f"{ORG}/{short}"
    value = "".join(chr(ord("a") + i % 26) for i in range(limit + 100))
    key = "description" if field == DESCRIPTION else "license"

    def push(tag: str, text: str) -> Pushed:
        layer = {field: text}
        if where == "labels":
            return world.push.image(name, tag, labels=layer)
        return world.push.image(name, tag, annotations=layer)

    long = push("long", value)
    version = world.versions(short)[long.digest]
    assert version[key] == value[:limit]
    assert len(version[key]) == limit
    assert world.package(short)[key] == value[:limit]
    exact = push("exact", value[:limit])
    assert world.versions(short)[exact.digest][key] == value[:limit]


# -- which version speaks for the package -------------------------------------------------------


def test_newest_version_speaks_for_the_package(world: World) -> None:
    name = f"{ORG}/evolving"
    world.push.image(name, "v1", labels={DESCRIPTION: "first", LICENSES: "MIT"})
    assert _fields(world.package("evolving")) == ("first", "MIT")
    world.push.image(name, "v2", labels={DESCRIPTION: "second", LICENSES: "Apache-2.0"})
    assert _fields(world.package("evolving")) == ("second", "Apache-2.0")


def test_deleting_the_newest_version_lets_the_previous_one_speak(world: World) -> None:
    name = f"{ORG}/rollback"
    world.push.image(name, "v1", labels={DESCRIPTION: "good build", LICENSES: "MIT"})
    bad = world.push.image(name, "v2", labels={DESCRIPTION: "bad build", LICENSES: "WTFPL"})
    assert _fields(world.package("rollback")) == ("bad build", "WTFPL")
    deleted = world.push.http.delete(f"/v2/{name}/manifests/{bad.digest}")
    assert deleted.status_code == 202, describe(deleted)
    package = world.package("rollback")
    assert package["version_count"] == 1
    assert _fields(package) == ("good build", "MIT")


def test_tagging_an_older_version_does_not_make_it_speak(world: World) -> None:
    """Re-pushing v1's manifest under a new tag adds no version: v2 is still the newest."""
    name = f"{ORG}/promoted"
    old = world.push.image(name, "v1", labels={DESCRIPTION: "old build"})
    world.push.image(name, "v2", labels={DESCRIPTION: "new build"})
    retag = world.push.http.put(
        f"/v2/{name}/manifests/stable", content=old.body, headers={"Content-Type": old.media_type}
    )
    assert retag.status_code == 201, describe(retag)
    assert world.versions("promoted")[old.digest]["metadata"]["container"]["tags"] == [
        "stable",
        "v1",
    ]
    assert world.package("promoted")["version_count"] == 2
    assert world.package("promoted")["description"] == "new build"


def test_referrers_do_not_speak_for_the_package(world: World) -> None:
    name = f"{ORG}/signed"
    image = world.push.image(name, "v1", labels={DESCRIPTION: "the image", LICENSES: "MIT"})
    signature = world.push.referrer(
        name, image, annotations={DESCRIPTION: "a signature", LICENSES: "CC0-1.0"}
    )
    bare = world.push.referrer(name, image)
    assert _fields(world.package("signed")) == ("the image", "MIT")
    versions = world.versions("signed")
    assert _fields(versions[signature.digest]) == ("a signature", "CC0-1.0")
    for digest in (signature.digest, bare.digest):
        assert versions[digest]["metadata"]["container"]["subject"] == image.digest
    assert versions[image.digest]["metadata"]["container"]["subject"] is None


# -- platforms, children, attestations ----------------------------------------------------------


def test_image_platform_and_kind(world: World) -> None:
    name = f"{ORG}/arm"
    image = world.push.image(
        name, "v1", platform={"os": "linux", "architecture": "arm64", "variant": "v8"}
    )
    container = world.versions("arm")[image.digest]["metadata"]["container"]
    assert container["kind"] == "image"
    assert container["platform"] == "linux/arm64/v8"
    assert container["is_child"] is False
    assert container["attestation"] is False
    assert container["tags"] == ["v1"]


def test_index_children_and_attestations(world: World) -> None:
    name = f"{ORG}/buildx"
    amd64 = world.push.image(name)
    # a config that declares no platform: the index entry says which it is
    s390x = world.push.image(name, platform={})
    attestation = world.push.attestation(name)
    index = world.push.index(
        name,
        [
            child_entry(amd64, "linux", "amd64"),
            child_entry(s390x, "linux", "s390x"),
            attestation_entry(attestation, amd64),
        ],
        "latest",
    )
    versions = world.versions("buildx")
    assert set(versions) == {amd64.digest, s390x.digest, attestation.digest, index.digest}
    top = versions[index.digest]["metadata"]["container"]
    assert top["kind"] == "index"
    assert top["platform"] is None
    assert top["is_child"] is False
    assert top["tags"] == ["latest"]
    assert top["parents"] == []
    for child, platform in ((amd64, "linux/amd64"), (s390x, "linux/s390x")):
        container = versions[child.digest]["metadata"]["container"]
        assert container["is_child"] is True
        assert container["attestation"] is False
        assert container["platform"] == platform
        assert container["tags"] == []
        assert container["parents"] == [index.digest]  # tied to the index that lists it
    flagged = versions[attestation.digest]["metadata"]["container"]
    assert flagged["is_child"] is True
    assert flagged["attestation"] is True
    assert flagged["parents"] == [index.digest]
    assert world.package("buildx")["version_count"] == 4


def test_tags_follow_the_version_they_point_at(world: World) -> None:
    name = f"{ORG}/moving"
    first = world.push.image(name, "latest")
    second = world.push.image(name, "latest")
    versions = world.versions("moving")
    assert versions[first.digest]["metadata"]["container"]["tags"] == []
    assert versions[second.digest]["metadata"]["container"]["tags"] == ["latest"]


def test_names_with_slashes(world: World) -> None:
    name = f"{ORG}/team/api"
    image = world.push.image(name, "v1", labels={DESCRIPTION: "team api", LICENSES: "MIT"})
    package = world.package("team/api")
    assert package["name"] == "team/api"
    assert _fields(package) == ("team api", "MIT")
    version = world.versions("team/api")[image.digest]
    assert _fields(version) == ("team api", "MIT")
    one = world.rest.ok(
        f"{package_path(f'/orgs/{ORG}', 'team/api')}/versions/{version['id']}", world.token
    )
    assert one == version
    deeper = world.push.image(f"{ORG}/team/api/v2", "v1", labels={DESCRIPTION: "deeper"})
    assert world.package("team/api/v2")["description"] == "deeper"
    assert list(world.versions("team/api/v2")) == [deeper.digest]
    assert list(world.versions("team/api")) == [image.digest]
