"""Spec code: digests, names, tags and manifest validation."""

from __future__ import annotations

import json

import pytest

from cargobay.errors import DigestInvalid, ManifestInvalid, NameInvalid, TagInvalid, Unsupported
from cargobay.oci import mediatypes as mt
from cargobay.oci.digest import compute_digest, parse_digest
from cargobay.oci.manifest import parse_manifest
from cargobay.oci.names import parse_name, parse_tag

SHA = "sha256:" + "a" * 64
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": SHA, "size": 3}
CONFIG = {"mediaType": mt.OCI_CONFIG, "digest": SHA, "size": 2}


@pytest.mark.parametrize("value", [SHA, "sha512:" + "0" * 128])
def test_valid_digests(value: str) -> None:
    assert parse_digest(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:../../etc/passwd",
        "sha256",
        "",
        "sha256:",
    ],
)
def test_invalid_digests(value: str) -> None:
    with pytest.raises(DigestInvalid):
        parse_digest(value)


def test_unsupported_algorithm() -> None:
    with pytest.raises(Unsupported):
        parse_digest("md5:" + "a" * 32)


@pytest.mark.parametrize("name", ["a", "octo/app", "a.b_c__d-e--f/g1", "x" * 255])
def test_valid_names(name: str) -> None:
    assert parse_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "A", "a/../b", "../a", "/a", "a/", "a//b", "a..b", "-a", "a_", "x" * 256, "a b"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        parse_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.0", "_x", "A-b.c_d", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert parse_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a/b", "a:b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid):
        parse_tag(tag)


def doc(**fields: object) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


def test_oci_manifest_with_foreign_layer_and_subject() -> None:
    foreign = {**LAYER, "mediaType": mt.DOCKER_FOREIGN_LAYER, "urls": ["https://x/y"]}
    parsed = parse_manifest(
        doc(mediaType=mt.OCI_MANIFEST, config=CONFIG, layers=[LAYER, foreign], subject=CONFIG),
        mt.OCI_MANIFEST,
    )
    assert parsed.media_type == mt.OCI_MANIFEST
    assert [layer.foreign for layer in parsed.layers] == [False, True]
    assert parsed.subject is not None and parsed.subject.digest == SHA
    assert parsed.referrer_artifact_type == mt.OCI_CONFIG


def test_media_type_from_content_type_when_absent() -> None:
    parsed = parse_manifest(doc(config=CONFIG, layers=[]), mt.OCI_MANIFEST + "; charset=utf-8")
    assert parsed.media_type == mt.OCI_MANIFEST
    index = parse_manifest(doc(manifests=[{**CONFIG, "mediaType": mt.OCI_MANIFEST}]), None)
    assert index.is_index and index.manifests[0].digest == SHA


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", mt.OCI_MANIFEST),
        (b"[]", mt.OCI_MANIFEST),
        (doc(config=CONFIG, layers=[]).replace(b'"schemaVersion": 2', b'"schemaVersion": 1'), None),
        (doc(mediaType=mt.OCI_MANIFEST, config=CONFIG, layers=[]), mt.DOCKER_MANIFEST),
        (doc(mediaType="application/x-unknown", config=CONFIG), None),
        (doc(mediaType=mt.DOCKER_SCHEMA1_SIGNED), None),
        (doc(mediaType=mt.OCI_MANIFEST, layers=[]), None),
        (doc(mediaType=mt.OCI_MANIFEST, config={**CONFIG, "size": -1}, layers=[]), None),
        (doc(mediaType=mt.OCI_MANIFEST, config={**CONFIG, "digest": "sha256:x"}, layers=[]), None),
        (doc(mediaType=mt.OCI_MANIFEST, config=CONFIG, layers={}), None),
        (doc(mediaType=mt.OCI_INDEX, manifests="x"), None),
        (doc(mediaType=mt.OCI_MANIFEST, config=CONFIG, layers=[], annotations={"a": 1}), None),
        (doc(mediaType=mt.DOCKER_MANIFEST, config=CONFIG, layers=[], subject=CONFIG), None),
    ],
)
def test_invalid_manifests(body: bytes, content_type: str | None) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, content_type)


def test_compute_digest() -> None:
    assert compute_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_accepts() -> None:
    assert mt.accepts(None, mt.OCI_INDEX)
    assert mt.accepts("application/json, */*", mt.OCI_INDEX)
    assert mt.accepts(f"{mt.OCI_MANIFEST}, {mt.OCI_INDEX};q=0.5", mt.OCI_INDEX)
    assert not mt.accepts(mt.OCI_MANIFEST, mt.OCI_INDEX)
