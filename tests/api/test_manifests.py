"""Manifests (distribution-spec: Pulling manifests end-3, Pushing Manifests end-7, Deleting end-9;
image-spec: manifest.md, image-index.md, descriptor.md)."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from apitest import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MAX_MANIFEST,
    OCI_CONFIG,
    OCI_FOREIGN_LAYER,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    assert_error,
    describe,
    descriptor,
    image_manifest,
    index_manifest,
    random_config,
)
from kit import digest_of, random_digest

ALL_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
TYPE_IDS = ["oci-manifest", "oci-index", "docker-manifest", "docker-list"]


def prepare(api: Registry, repo: str, media_type: str, **extra: Any) -> bytes:
    """Push what a manifest of ``media_type`` needs and return the manifest bytes (not pushed)."""
    if media_type in INDEX_TYPES:
        child_type = INDEX_TYPES[media_type]
        children = []
        for arch in ("arm64", "s390x"):
            digest, body = api.push_image(repo, media_type=child_type)
            children.append(
                {
                    "mediaType": child_type,
                    "digest": digest,
                    "size": len(body),
                    "platform": {"architecture": arch, "os": "linux"},
                }
            )
        return index_manifest(children, media_type, **extra)
    config_type, layer_type = (
        (OCI_CONFIG, OCI_LAYER) if media_type == OCI_MANIFEST else (DOCKER_CONFIG, DOCKER_LAYER)
    )
    config = random_config()
    layer = os.urandom(700)
    api.push_blob(repo, config)
    api.push_blob(repo, layer)
    return image_manifest(
        descriptor(config_type, config), [descriptor(layer_type, layer)], media_type, **extra
    )


def assert_manifest(
    resp: httpx.Response, body: bytes, media_type: str, *, head: bool = False
) -> None:
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["content-type"] == media_type, describe(resp)
    assert resp.headers["docker-content-digest"] == digest_of(body), describe(resp)
    assert resp.headers["content-length"] == str(len(body)), describe(resp)
    assert resp.content == (b"" if head else body), describe(resp)


def assert_manifest_unknown(api: Registry, repo: str, reference: str) -> None:
    assert_error(api.get_manifest(repo, reference), 404, "MANIFEST_UNKNOWN")
    assert_error(api.http.head(f"/v2/{repo}/manifests/{reference}"), 404)


# -- push and pull ------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", ALL_TYPES, ids=TYPE_IDS)
def test_push_by_tag_then_pull_by_tag_and_digest(api: Registry, repo: str, media_type: str) -> None:
    body = prepare(api, repo, media_type)
    digest = digest_of(body)
    resp = api.put_manifest(repo, "v1", body, media_type)
    assert resp.status_code == 201, describe(resp)
    assert api.path_of(resp.headers["location"]) == f"/v2/{repo}/manifests/{digest}", describe(resp)
    assert resp.headers["docker-content-digest"] == digest, describe(resp)
    for reference in ("v1", digest):
        assert_manifest(api.get_manifest(repo, reference), body, media_type)
        head = api.http.head(
            f"/v2/{repo}/manifests/{reference}", headers={"Accept": ", ".join(ALL_TYPES)}
        )
        assert_manifest(head, body, media_type, head=True)


@pytest.mark.parametrize("media_type", ALL_TYPES, ids=TYPE_IDS)
def test_push_by_digest(api: Registry, repo: str, media_type: str) -> None:
    body = prepare(api, repo, media_type)
    digest = digest_of(body)
    resp = api.put_manifest(repo, digest, body, media_type)
    assert resp.status_code == 201, describe(resp)
    assert api.path_of(resp.headers["location"]) == f"/v2/{repo}/manifests/{digest}", describe(resp)
    assert resp.headers["docker-content-digest"] == digest, describe(resp)
    assert_manifest(api.get_manifest(repo, digest), body, media_type)


@pytest.mark.reference_deviation("2.8.2 refuses OCI manifests to clients that send no Accept")
def test_pull_without_accept_header(api: Registry, repo: str) -> None:
    _digest, body = api.push_image(repo, "latest")
    resp = api.http.get(f"/v2/{repo}/manifests/latest")
    assert_manifest(resp, body, OCI_MANIFEST)


def test_exact_bytes_round_trip(api: Registry, repo: str) -> None:
    config = random_config()
    layer = os.urandom(100)
    api.push_blob(repo, config)
    api.push_blob(repo, layer)
    config_desc = json.dumps(descriptor(OCI_CONFIG, config), separators=(",", ":"))
    layer_desc = json.dumps(descriptor(OCI_LAYER, layer), indent=8)
    # Odd key order, tabs, CRLF, escaped and raw non-ASCII text, trailing whitespace.
    text = (
        '{ "layers" : [ ' + layer_desc + " ] ,\r\n"
        '\t"annotations":{"note":"caf\\u00e9 \u2615 \\"quoted\\"","z":"","a":"1"},\r\n'
        '\t"config":' + config_desc + ',  "schemaVersion":2,\n'
        '   "mediaType":"' + OCI_MANIFEST + '"}   \n\n'
    )
    body = text.encode("utf-8")
    digest = api.push_manifest(repo, "weird", body, OCI_MANIFEST)
    for reference in ("weird", digest):
        assert_manifest(api.get_manifest(repo, reference), body, OCI_MANIFEST)


def test_manifest_without_media_type_field_uses_content_type(api: Registry, repo: str) -> None:
    config = random_config()
    layer = os.urandom(100)
    api.push_blob(repo, config)
    api.push_blob(repo, layer)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    ).encode()
    digest = api.push_manifest(repo, "nomt", body, OCI_MANIFEST)
    assert_manifest(api.get_manifest(repo, digest), body, OCI_MANIFEST)


def test_content_type_parameters_are_ignored(api: Registry, repo: str) -> None:
    body = prepare(api, repo, OCI_MANIFEST)
    resp = api.put_manifest(repo, "params", body, OCI_MANIFEST + "; charset=utf-8")
    assert resp.status_code == 201, describe(resp)
    assert_manifest(api.get_manifest(repo, "params"), body, OCI_MANIFEST)


def test_same_manifest_under_two_tags(api: Registry, repo: str) -> None:
    body = prepare(api, repo, OCI_MANIFEST)
    api.push_manifest(repo, "one", body, OCI_MANIFEST)
    api.push_manifest(repo, "two", body, OCI_MANIFEST)
    for tag in ("one", "two"):
        assert_manifest(api.get_manifest(repo, tag), body, OCI_MANIFEST)


def test_tag_moves_to_the_new_manifest(api: Registry, repo: str) -> None:
    old_digest, _ = api.push_image(repo, "moving")
    _new_digest, new_body = api.push_image(repo, "moving")
    assert_manifest(api.get_manifest(repo, "moving"), new_body, OCI_MANIFEST)
    old = api.get_manifest(repo, old_digest)
    assert old.status_code == 200, describe(old)


@pytest.mark.reference_deviation("2.8.2 answers 500 UNKNOWN + MANIFEST_BLOB_UNKNOWN")
@pytest.mark.parametrize("media_type", [OCI_FOREIGN_LAYER, DOCKER_FOREIGN_LAYER])
def test_foreign_layer_with_urls_is_accepted_without_its_blob(
    api: Registry, repo: str, media_type: str
) -> None:
    manifest_type = OCI_MANIFEST if media_type == OCI_FOREIGN_LAYER else DOCKER_MANIFEST
    config_type = OCI_CONFIG if manifest_type == OCI_MANIFEST else DOCKER_CONFIG
    config = random_config()
    api.push_blob(repo, config)
    foreign = os.urandom(64)
    layer = descriptor(
        media_type, foreign, urls=["https://example.com/layers/" + digest_of(foreign)]
    )
    body = image_manifest(descriptor(config_type, config), [layer], manifest_type)
    resp = api.put_manifest(repo, "foreign", body, manifest_type)
    assert resp.status_code == 201, describe(resp)
    assert_manifest(api.get_manifest(repo, "foreign"), body, manifest_type)


# -- Accept negotiation ---------------------------------------------------------------------------


@pytest.mark.reference_deviation("2.8.2 refuses an OCI index to clients that send no Accept")
def test_index_is_not_served_to_a_client_that_only_accepts_image_manifests(
    api: Registry, repo: str
) -> None:
    digest, body = api.push_index(repo, "multi")
    accept = f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"
    for reference in ("multi", digest):
        assert_error(api.get_manifest(repo, reference, accept=accept), 404, "MANIFEST_UNKNOWN")
        plain = api.http.get(f"/v2/{repo}/manifests/{reference}")
        assert_manifest(plain, body, OCI_INDEX)
        accepted = api.get_manifest(repo, reference, accept=f"{OCI_MANIFEST}, {OCI_INDEX}")
        assert_manifest(accepted, body, OCI_INDEX)


def test_accept_as_repeated_headers(api: Registry, repo: str) -> None:
    _digest, body = api.push_index(repo, "multi")
    resp = api.http.get(
        f"/v2/{repo}/manifests/multi",
        headers=[("Accept", OCI_MANIFEST), ("Accept", OCI_INDEX)],
    )
    assert_manifest(resp, body, OCI_INDEX)


# -- unknown manifests, deletes -------------------------------------------------------------------


def test_unknown_manifest_is_404(api: Registry, repo: str) -> None:
    api.push_image(repo, "exists")
    assert_manifest_unknown(api, repo, "does-not-exist")
    assert_manifest_unknown(api, repo, random_digest())


def test_manifest_in_unknown_repository_is_404(api: Registry, repo: str) -> None:
    resp = api.get_manifest(repo, "latest")
    assert_error(resp, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_manifest_is_only_visible_in_its_repository(
    api: Registry, repo: str, other_repo: str
) -> None:
    digest, _ = api.push_image(repo, "latest")
    api.push_image(other_repo, "latest")
    assert_manifest_unknown(api, other_repo, digest)


def test_delete_by_digest_removes_manifest_and_its_tags(api: Registry, repo: str) -> None:
    digest, _ = api.push_image(repo, "doomed")
    api.push_manifest(repo, "doomed-too", api.get_manifest(repo, digest).content, OCI_MANIFEST)
    api.push_image(repo, "keeper")
    resp = api.http.delete(f"/v2/{repo}/manifests/{digest}")
    assert resp.status_code == 202, describe(resp)
    assert_manifest_unknown(api, repo, digest)
    assert_manifest_unknown(api, repo, "doomed")
    assert_manifest_unknown(api, repo, "doomed-too")
    assert api.tags(repo) == ["keeper"]


@pytest.mark.reference_deviation("Distribution 2.8.2 cannot delete by tag")
def test_delete_by_tag_removes_only_the_tag(api: Registry, repo: str) -> None:
    digest, body = api.push_image(repo, "gone")
    api.push_manifest(repo, "stays", body, OCI_MANIFEST)
    resp = api.http.delete(f"/v2/{repo}/manifests/gone")
    assert resp.status_code == 202, describe(resp)
    assert_manifest_unknown(api, repo, "gone")
    assert_manifest(api.get_manifest(repo, digest), body, OCI_MANIFEST)
    assert_manifest(api.get_manifest(repo, "stays"), body, OCI_MANIFEST)
    assert api.tags(repo) == ["stays"]


def test_delete_unknown_manifest_is_404(api: Registry, repo: str) -> None:
    api.push_image(repo, "exists")
    resp = api.http.delete(f"/v2/{repo}/manifests/{random_digest()}")
    assert_error(resp, 404, "MANIFEST_UNKNOWN")


def test_deleted_manifest_can_be_pushed_again(api: Registry, repo: str) -> None:
    digest, body = api.push_image(repo, "again")
    assert api.http.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    api.push_manifest(repo, "again", body, OCI_MANIFEST)
    assert_manifest(api.get_manifest(repo, "again"), body, OCI_MANIFEST)


# -- validation errors ----------------------------------------------------------------------------


def assert_unchanged(api: Registry, repo: str, tag: str, body: bytes | None) -> None:
    """After a failed PUT the tag still serves ``body`` (or still does not exist)."""
    if body is None:
        assert_manifest_unknown(api, repo, tag)
    else:
        assert_manifest(api.get_manifest(repo, tag), body, OCI_MANIFEST)


@pytest.fixture(params=["new-tag", "existing-tag"])
def previous(request: pytest.FixtureRequest, api: Registry, repo: str) -> bytes | None:
    """Either nothing is tagged ``target`` yet, or an older manifest is."""
    if request.param == "new-tag":
        return None
    _, body = api.push_image(repo, "target")
    return body


def test_malformed_json_is_manifest_invalid(
    api: Registry, repo: str, previous: bytes | None
) -> None:
    for body in (b"{not json", b"", b"[]", b'"string"', b"\xff\xfe"):
        resp = api.put_manifest(repo, "target", body, OCI_MANIFEST)
        assert_error(resp, 400, "MANIFEST_INVALID")
    assert_unchanged(api, repo, "target", previous)


@pytest.mark.parametrize(
    ("body_type", "content_type"),
    [
        (OCI_MANIFEST, OCI_INDEX),
        (OCI_INDEX, OCI_MANIFEST),
        (DOCKER_MANIFEST, OCI_MANIFEST),
        (OCI_MANIFEST, DOCKER_MANIFEST),
    ],
    ids=["manifest-as-index", "index-as-manifest", "docker-as-oci", "oci-as-docker"],
)
def test_media_type_differing_from_content_type_is_manifest_invalid(
    api: Registry, repo: str, previous: bytes | None, body_type: str, content_type: str
) -> None:
    body = prepare(api, repo, body_type)
    resp = api.put_manifest(repo, "target", body, content_type)
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert_unchanged(api, repo, "target", previous)
    assert_manifest_unknown(api, repo, digest_of(body))


@pytest.mark.reference_deviation("2.8.2 answers 500 UNKNOWN")
def test_wrong_schema_version_is_manifest_invalid(api: Registry, repo: str) -> None:
    body = json.loads(prepare(api, repo, OCI_MANIFEST))
    body["schemaVersion"] = 1
    resp = api.put_manifest(repo, "target", json.dumps(body).encode(), OCI_MANIFEST)
    assert_error(resp, 400, "MANIFEST_INVALID")
    assert_manifest_unknown(api, repo, "target")


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_missing_blob_is_manifest_blob_unknown(
    api: Registry, repo: str, previous: bytes | None, missing: str
) -> None:
    config = random_config()
    layer = os.urandom(300)
    if missing != "config":
        api.push_blob(repo, config)
    if missing != "layer":
        api.push_blob(repo, layer)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    resp = api.put_manifest(repo, "target", body, OCI_MANIFEST)
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_unchanged(api, repo, "target", previous)
    assert_manifest_unknown(api, repo, digest_of(body))


def test_blob_of_another_repository_is_manifest_blob_unknown(
    api: Registry, repo: str, other_repo: str
) -> None:
    config = random_config()
    layer = os.urandom(300)
    api.push_blob(repo, config)
    api.push_blob(other_repo, layer)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    resp = api.put_manifest(repo, "target", body, OCI_MANIFEST)
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_manifest_unknown(api, repo, "target")


def test_deleted_blob_is_manifest_blob_unknown(api: Registry, repo: str) -> None:
    config = random_config()
    layer = os.urandom(300)
    api.push_blob(repo, config)
    layer_digest = api.push_blob(repo, layer)
    assert api.http.delete(f"/v2/{repo}/blobs/{layer_digest}").status_code == 202
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    resp = api.put_manifest(repo, "target", body, OCI_MANIFEST)
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_manifest_unknown(api, repo, "target")


def test_pushing_the_same_manifest_again_is_fine(api: Registry, repo: str) -> None:
    body = prepare(api, repo, OCI_MANIFEST)
    first = api.put_manifest(repo, "same", body, OCI_MANIFEST)
    second = api.put_manifest(repo, "same", body, OCI_MANIFEST)
    assert first.status_code == second.status_code == 201, describe(second)
    assert second.headers["docker-content-digest"] == digest_of(body), describe(second)
    assert_manifest(api.get_manifest(repo, "same"), body, OCI_MANIFEST)
    assert api.tags(repo) == ["same"]


@pytest.mark.cargobay_only("reference accepts an index whose children are unknown")
@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST], ids=["oci", "docker"])
def test_index_with_unknown_child_is_manifest_unknown(
    api: Registry, repo: str, other_repo: str, media_type: str
) -> None:
    child_type = INDEX_TYPES[media_type]
    known, known_body = api.push_image(repo, media_type=child_type)
    elsewhere, elsewhere_body = api.push_image(other_repo, media_type=child_type)
    for unknown, size in ((random_digest(), 500), (elsewhere, len(elsewhere_body))):
        body = index_manifest(
            [
                {"mediaType": child_type, "digest": known, "size": len(known_body)},
                {"mediaType": child_type, "digest": unknown, "size": size},
            ],
            media_type,
        )
        resp = api.put_manifest(repo, "target", body, media_type)
        assert_error(resp, 400, "MANIFEST_UNKNOWN")
        assert_manifest_unknown(api, repo, "target")
        assert_manifest_unknown(api, repo, digest_of(body))


def test_put_by_digest_that_does_not_match_is_digest_invalid(api: Registry, repo: str) -> None:
    body = prepare(api, repo, OCI_MANIFEST)
    wrong = random_digest()
    resp = api.put_manifest(repo, wrong, body, OCI_MANIFEST)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert_manifest_unknown(api, repo, wrong)
    assert_manifest_unknown(api, repo, digest_of(body))


@pytest.mark.cargobay_only("reference routes invalid tags to a plain 404")
@pytest.mark.parametrize(
    "tag", ["-bad", ".bad", "a" * 129, "bad!tag", "bad~", "b%40d"], ids=lambda t: t[:12]
)
def test_invalid_tag_is_tag_invalid(api: Registry, repo: str, tag: str) -> None:
    body = prepare(api, repo, OCI_MANIFEST)
    resp = api.put_manifest(repo, tag, body, OCI_MANIFEST)
    assert_error(resp, 400, "TAG_INVALID")
    assert_manifest_unknown(api, repo, digest_of(body))


#: References that are no valid tag and no valid digest: no manifest can have them.
INVALID_REFERENCES = [
    ".INVALID_MANIFEST_NAME",
    "-bad",
    "a" * 129,
    "bad!tag",
    "sha256:abc",
    "sha256:" + "Z" * 64,
    "sha512:" + "0" * 64,
    "md5:" + "0" * 32,
]


@pytest.mark.parametrize("reference", INVALID_REFERENCES, ids=lambda r: r[:14])
def test_get_and_head_of_an_invalid_reference_are_404(
    api: Registry, repo: str, reference: str
) -> None:
    """spec.md "Pulling manifests": a manifest that is not in the repository is 404; a
    reference that cannot name a manifest is just that (the conformance suites GET and HEAD
    ``.INVALID_MANIFEST_NAME``)."""
    api.push_image(repo, "latest")
    assert_error(api.get_manifest(repo, reference), 404, "MANIFEST_UNKNOWN")
    head = api.http.head(f"/v2/{repo}/manifests/{reference}")
    assert head.status_code == 404 and head.content == b"", describe(head)


def test_invalid_reference_in_an_unknown_repository_is_name_unknown(
    api: Registry, repo: str
) -> None:
    resp = api.get_manifest(repo, ".INVALID_MANIFEST_NAME")
    assert_error(resp, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")
    head = api.http.head(f"/v2/{repo}/manifests/.INVALID_MANIFEST_NAME")
    assert head.status_code == 404, describe(head)


@pytest.mark.cargobay_only("reference routes invalid tags to a plain 404")
def test_push_under_an_invalid_tag_is_still_refused(api: Registry, repo: str) -> None:
    """Only reads treat an invalid reference as unknown: a PUT is refused (400) and changes
    nothing, and the GET after it is 404."""
    body = prepare(api, repo, OCI_MANIFEST)
    assert_error(
        api.put_manifest(repo, ".INVALID_MANIFEST_NAME", body, OCI_MANIFEST),
        400,
        "TAG_INVALID",
        "MANIFEST_INVALID",
    )
    assert_manifest_unknown(api, repo, ".INVALID_MANIFEST_NAME")
    assert_manifest_unknown(api, repo, digest_of(body))


@pytest.mark.parametrize("tag", ["a" * 128, "_under", "UPPER.case-1_x", "0", "v1.2.3-rc.1"])
def test_valid_tags_are_accepted(api: Registry, repo: str, tag: str) -> None:
    body = prepare(api, repo, OCI_MANIFEST)
    api.push_manifest(repo, tag, body, OCI_MANIFEST)
    assert_manifest(api.get_manifest(repo, tag), body, OCI_MANIFEST)
    assert tag in api.tags(repo)


# -- size limit (cargobay setting) ----------------------------------------------------------------


@pytest.mark.cargobay_only("max_manifest_size setting")
def test_manifest_over_the_size_limit_is_413(limited: tuple[Registry, Any], repo: str) -> None:
    api, _ = limited
    small = prepare(api, repo, OCI_MANIFEST)
    assert len(small) <= MAX_MANIFEST
    api.push_manifest(repo, "small", small, OCI_MANIFEST)
    big = prepare(api, repo, OCI_MANIFEST, annotations={"pad": "x" * MAX_MANIFEST})
    assert len(big) > MAX_MANIFEST
    resp = api.put_manifest(repo, "big", big, OCI_MANIFEST)
    assert_error(resp, 413, "MANIFEST_INVALID", "SIZE_INVALID")
    assert_manifest_unknown(api, repo, "big")
    assert_manifest_unknown(api, repo, digest_of(big))
    resp = api.put_manifest(repo, "small", big, OCI_MANIFEST)
    assert_error(resp, 413, "MANIFEST_INVALID", "SIZE_INVALID")
    assert_manifest(api.get_manifest(repo, "small"), small, OCI_MANIFEST)
