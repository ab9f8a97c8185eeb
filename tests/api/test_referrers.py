"""Referrers (distribution-spec 1.1: Listing Referrers, end-12a/12b; Pushing Manifests with
Subject; image-spec 1.1: ``subject``, ``artifactType``, the empty descriptor)."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from apitest import (
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    assert_error,
    describe,
    descriptor,
    image_manifest,
    index_manifest,
)
from kit import digest_of, random_digest

pytestmark = pytest.mark.reference_deviation("Distribution 2.8.2 has no referrers API")

SBOM = "application/vnd.example.sbom.v1"
SIGNATURE_CONFIG = "application/vnd.example.signature.config.v1+json"


def subject_of(api: Registry, repo: str) -> dict[str, Any]:
    digest, body = api.push_image(repo, "subject")
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}


def push_artifact(
    api: Registry,
    repo: str,
    subject: dict[str, Any] | None,
    *,
    artifact_type: str | None = None,
    config_type: str = OCI_EMPTY,
    annotations: dict[str, str] | None = None,
) -> tuple[str, bytes, httpx.Response]:
    """Push an artifact manifest (by digest) and return its digest, bytes and the PUT response."""
    config = EMPTY_JSON if config_type == OCI_EMPTY else os.urandom(40)
    api.push_blob(repo, config)
    payload = os.urandom(200)
    api.push_blob(repo, payload)
    extra: dict[str, Any] = {}
    if artifact_type:
        extra["artifactType"] = artifact_type
    if subject is not None:
        extra["subject"] = subject
    if annotations:
        extra["annotations"] = annotations
    body = image_manifest(
        descriptor(config_type, config), [descriptor(OCI_LAYER, payload)], **extra
    )
    digest = digest_of(body)
    resp = api.put_manifest(repo, digest, body, OCI_MANIFEST)
    assert resp.status_code == 201, describe(resp)
    return digest, body, resp


def referrers(api: Registry, repo: str, digest: str, **params: str) -> httpx.Response:
    resp = api.http.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["content-type"] == OCI_INDEX, describe(resp)
    body = resp.json()
    assert body["schemaVersion"] == 2, describe(resp)
    assert body["mediaType"] == OCI_INDEX, describe(resp)
    assert isinstance(body["manifests"], list), describe(resp)
    return resp


def by_digest(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    manifests = resp.json()["manifests"]
    found = {m["digest"]: m for m in manifests}
    assert len(found) == len(manifests), f"duplicate descriptors: {describe(resp)}"
    return found


def test_push_with_subject_returns_oci_subject_header(api: Registry, repo: str) -> None:
    subject = subject_of(api, repo)
    _, _, resp = push_artifact(api, repo, subject, artifact_type=SBOM)
    assert resp.headers.get("oci-subject") == subject["digest"], describe(resp)


def test_push_without_subject_has_no_oci_subject_header(api: Registry, repo: str) -> None:
    _, _, resp = push_artifact(api, repo, None, artifact_type=SBOM)
    assert "oci-subject" not in resp.headers, describe(resp)
    assert referrers(api, repo, random_digest()).json()["manifests"] == []


def test_referrers_lists_descriptors_of_manifests_with_that_subject(
    api: Registry, repo: str
) -> None:
    subject = subject_of(api, repo)
    sbom_annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "x": "1"}
    sbom, sbom_body, _ = push_artifact(
        api, repo, subject, artifact_type=SBOM, annotations=sbom_annotations
    )
    sig, sig_body, _ = push_artifact(api, repo, subject, config_type=SIGNATURE_CONFIG)
    push_artifact(api, repo, None, artifact_type=SBOM)  # no subject: not a referrer
    other_subject = subject_of(api, repo)
    push_artifact(api, repo, other_subject, artifact_type=SBOM)  # another subject

    found = by_digest(referrers(api, repo, subject["digest"]))
    assert set(found) == {sbom, sig}
    assert found[sbom]["mediaType"] == OCI_MANIFEST
    assert found[sbom]["size"] == len(sbom_body)
    assert found[sbom]["artifactType"] == SBOM
    assert found[sbom]["annotations"] == sbom_annotations
    assert found[sig]["mediaType"] == OCI_MANIFEST
    assert found[sig]["size"] == len(sig_body)
    # No artifactType in the manifest: the descriptor takes the config's media type.
    assert found[sig]["artifactType"] == SIGNATURE_CONFIG
    assert found[sig].get("annotations") in (None, {})


def test_index_with_subject_is_a_referrer(api: Registry, repo: str) -> None:
    subject = subject_of(api, repo)
    child, child_body, _ = push_artifact(api, repo, None, artifact_type=SBOM)
    child_desc = {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}
    typed = index_manifest([child_desc], artifactType=SBOM, subject=subject, annotations={"k": "v"})
    untyped = index_manifest([child_desc], subject=subject)
    for body in (typed, untyped):
        resp = api.put_manifest(repo, digest_of(body), body, OCI_INDEX)
        assert resp.status_code == 201, describe(resp)
        assert resp.headers.get("oci-subject") == subject["digest"], describe(resp)
    found = by_digest(referrers(api, repo, subject["digest"]))
    assert set(found) == {digest_of(typed), digest_of(untyped)}
    assert found[digest_of(typed)]["mediaType"] == OCI_INDEX
    assert found[digest_of(typed)]["artifactType"] == SBOM
    assert found[digest_of(typed)]["annotations"] == {"k": "v"}
    assert found[digest_of(typed)]["size"] == len(typed)
    assert "artifactType" not in found[digest_of(untyped)]


def test_filter_by_artifact_type(api: Registry, repo: str) -> None:
    subject = subject_of(api, repo)
    sbom, _, _ = push_artifact(api, repo, subject, artifact_type=SBOM)
    push_artifact(api, repo, subject, config_type=SIGNATURE_CONFIG)
    resp = referrers(api, repo, subject["digest"], artifactType=SBOM)
    assert resp.headers.get("oci-filters-applied") == "artifactType", describe(resp)
    assert set(by_digest(resp)) == {sbom}
    resp = referrers(api, repo, subject["digest"], artifactType="application/vnd.none")
    assert resp.headers.get("oci-filters-applied") == "artifactType", describe(resp)
    assert resp.json()["manifests"] == []
    unfiltered = referrers(api, repo, subject["digest"])
    assert "oci-filters-applied" not in unfiltered.headers, describe(unfiltered)
    assert len(unfiltered.json()["manifests"]) == 2


def test_unknown_subject_is_an_empty_index(api: Registry, repo: str) -> None:
    api.push_image(repo, "latest")
    resp = referrers(api, repo, random_digest())
    assert resp.json()["manifests"] == []


EMPTY_INDEX = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def assert_empty_index(api: Registry, repo: str, digest: str) -> None:
    """spec.md "Listing Referrers": a subject without referrers is 200 with an empty index
    (``Content-Type: application/vnd.oci.image.index.v1+json``), never 404."""
    resp = referrers(api, repo, digest)
    assert resp.json() == EMPTY_INDEX, describe(resp)


def test_subject_that_is_no_manifest_anywhere(api: Registry, repo: str) -> None:
    api.push_image(repo, "latest")
    assert_empty_index(api, repo, random_digest())


def test_subject_in_a_repository_with_blobs_only(api: Registry, repo: str) -> None:
    data = os.urandom(100)
    api.push_blob(repo, data)
    assert_empty_index(api, repo, digest_of(data))  # a blob is not a manifest
    assert_empty_index(api, repo, random_digest())


def test_sha512_subject_without_referrers(api: Registry, repo: str) -> None:
    api.push_image(repo, "latest")
    assert_empty_index(api, repo, digest_of(os.urandom(16), "sha512"))


def test_subject_whose_referrers_were_all_deleted(api: Registry, repo: str) -> None:
    subject = subject_of(api, repo)
    digests = [push_artifact(api, repo, subject, artifact_type=SBOM)[0] for _ in range(2)]
    for digest in digests:
        assert api.http.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    assert_empty_index(api, repo, subject["digest"])
    assert api.http.delete(f"/v2/{repo}/manifests/{subject['digest']}").status_code == 202
    assert_empty_index(api, repo, subject["digest"])


def test_referrers_in_an_unknown_repository_are_name_unknown(api: Registry, repo: str) -> None:
    resp = api.http.get(f"/v2/{repo}/referrers/{random_digest()}")
    assert_error(resp, 404, "NAME_UNKNOWN")


def test_subject_need_not_exist(api: Registry, repo: str) -> None:
    missing = {"mediaType": OCI_MANIFEST, "digest": random_digest(), "size": 1234}
    digest, _, resp = push_artifact(api, repo, missing, artifact_type=SBOM)
    assert resp.headers.get("oci-subject") == missing["digest"], describe(resp)
    assert set(by_digest(referrers(api, repo, missing["digest"]))) == {digest}


def test_malformed_digest_is_400(api: Registry, repo: str) -> None:
    api.push_image(repo, "latest")
    for bad in ("sha256:abc", "nope", "sha256:" + "z" * 64):
        assert_error(api.http.get(f"/v2/{repo}/referrers/{bad}"), 400, "DIGEST_INVALID")


def test_deleted_referrer_is_no_longer_listed(api: Registry, repo: str) -> None:
    subject = subject_of(api, repo)
    gone, _, _ = push_artifact(api, repo, subject, artifact_type=SBOM)
    kept, _, _ = push_artifact(api, repo, subject, artifact_type=SBOM)
    assert api.http.delete(f"/v2/{repo}/manifests/{gone}").status_code == 202
    assert set(by_digest(referrers(api, repo, subject["digest"]))) == {kept}


def test_referrers_are_scoped_to_the_repository(api: Registry, repo: str, other_repo: str) -> None:
    subject = subject_of(api, repo)
    push_artifact(api, repo, subject, artifact_type=SBOM)
    api.push_image(other_repo, "latest")
    assert referrers(api, other_repo, subject["digest"]).json()["manifests"] == []


def test_referrer_pushed_twice_is_listed_once(api: Registry, repo: str) -> None:
    subject = subject_of(api, repo)
    digest, body, _ = push_artifact(api, repo, subject, artifact_type=SBOM)
    api.push_manifest(repo, "tagged", body, OCI_MANIFEST)
    assert set(by_digest(referrers(api, repo, subject["digest"]))) == {digest}


def test_referrer_with_config_media_type(api: Registry, repo: str) -> None:
    """A plain image with a subject (e.g. a signed image) is listed with its config type."""
    subject = subject_of(api, repo)
    digest, _, _ = push_artifact(api, repo, subject, config_type=OCI_CONFIG)
    found = by_digest(referrers(api, repo, subject["digest"]))
    assert found[digest]["artifactType"] == OCI_CONFIG
