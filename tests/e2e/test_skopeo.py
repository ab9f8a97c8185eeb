"""skopeo against a real registry: OCI and Docker v2s2 images, inspect, tags, delete."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from clients import Clients
from images import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    PulledDir,
    assert_same_image,
    build_image,
    describe,
    layout_contents,
    layout_manifest,
    referenced_blobs,
)
from kit import digest_of

pytestmark = pytest.mark.e2e

TLS = "--tls-verify=false"
DEST_TLS = "--dest-tls-verify=false"
SRC_TLS = "--src-tls-verify=false"


def push(clients: Clients, layout: Path, tag: str, dest: str, *extra: str) -> None:
    clients.skopeo("copy", "--retry-times", "0", DEST_TLS, *extra, f"oci:{layout}:{tag}", dest)


def pull_dir(clients: Clients, src: str, dest: Path, *extra: str) -> PulledDir:
    clients.skopeo("copy", SRC_TLS, *extra, src, f"dir:{dest}")
    return PulledDir(dest)


def raw_manifest(clients: Clients, ref: str) -> bytes:
    proc = clients.skopeo("inspect", "--raw", TLS, ref)
    return proc.stdout.encode()


def test_oci_image_push_and_pull_byte_identical(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    digest = build_image(layout, "v1", labels={"org.example.test": "oci"})
    _, manifest = layout_manifest(layout, "v1")
    blobs = layout_contents(layout, "v1")
    ref = f"docker://{registry.address}/{repo}:v1"

    push(clients, layout, "v1", ref)

    assert raw_manifest(clients, ref) == manifest
    pulled = pull_dir(clients, ref, tmp_path / "pulled")
    assert_same_image(pulled, manifest, blobs)
    # Back into an OCI layout too: same manifest digest, same blob files.
    clients.skopeo("copy", SRC_TLS, ref, f"oci:{tmp_path / 'back'}:v1")
    back_digest, back_manifest = layout_manifest(tmp_path / "back", "v1")
    assert back_digest == digest
    assert back_manifest == manifest
    assert layout_contents(tmp_path / "back", "v1") == blobs
    # By digest as well as by tag.
    by_digest = f"docker://{registry.address}/{repo}@{digest}"
    assert raw_manifest(clients, by_digest) == manifest


def test_inspect_shows_config_labels_and_digest(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    labels = {"org.opencontainers.image.title": "cargobay-e2e", "org.example.flavour": "mint"}
    digest = build_image(tmp_path / "src", "v1", labels=labels, arch="arm64")
    ref = f"docker://{registry.address}/{repo}:v1"
    push(clients, tmp_path / "src", "v1", ref)

    proc = clients.skopeo("inspect", TLS, ref)
    info = json.loads(proc.stdout)
    assert info["Digest"] == digest, describe(proc)
    assert info["Labels"] == labels, describe(proc)
    assert info["Architecture"] == "arm64"
    assert info["Os"] == "linux"
    assert info["RepoTags"] == ["v1"]
    _, manifest = layout_manifest(tmp_path / "src", "v1")
    assert info["Layers"] == referenced_blobs(manifest)[1:]

    proc = clients.skopeo("inspect", "--config", TLS, ref)
    config = json.loads(proc.stdout)
    assert config["config"]["Labels"] == labels


def test_list_tags(clients: Clients, registry, repo: str, tmp_path: Path) -> None:
    layout = tmp_path / "src"
    build_image(layout, "one")
    build_image(layout, "two")
    wanted = ["1.0", "1.0.1", "latest", "v2", "two"]
    for tag in ["1.0", "1.0.1", "latest"]:
        push(clients, layout, "one", f"docker://{registry.address}/{repo}:{tag}")
    for tag in ["v2", "two"]:
        push(clients, layout, "two", f"docker://{registry.address}/{repo}:{tag}")

    proc = clients.skopeo("list-tags", TLS, f"docker://{registry.address}/{repo}")
    listed = json.loads(proc.stdout)
    assert sorted(listed["Tags"]) == sorted(wanted), describe(proc)
    assert listed["Repository"] == f"{registry.address}/{repo}"


def test_list_tags_of_unknown_repository_fails(clients: Clients, registry, repo: str) -> None:
    proc = clients.skopeo("list-tags", TLS, f"docker://{registry.address}/{repo}", check=False)
    assert proc.returncode != 0, describe(proc)


def test_delete_then_pull_by_that_tag_fails(
    clients: Clients, registry, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "keep")
    gone_digest = build_image(layout, "gone")
    _, keep_manifest = layout_manifest(layout, "keep")
    keep_blobs = layout_contents(layout, "keep")
    keep = f"docker://{registry.address}/{repo}:keep"
    gone = f"docker://{registry.address}/{repo}:gone"
    push(clients, layout, "keep", keep)
    push(clients, layout, "gone", gone)

    clients.skopeo("delete", TLS, gone)

    proc = clients.skopeo("inspect", "--raw", TLS, gone, check=False)
    assert proc.returncode != 0, describe(proc)
    assert "manifest unknown" in proc.stderr.lower(), describe(proc)
    proc = clients.skopeo("copy", SRC_TLS, gone, f"dir:{tmp_path / 'gone'}", check=False)
    assert proc.returncode != 0, describe(proc)
    # skopeo deletes by digest: the manifest itself is gone, not only the tag.
    r = http.get(f"/v2/{repo}/manifests/{gone_digest}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 404, r.text
    assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN", r.text

    proc = clients.skopeo("list-tags", TLS, f"docker://{registry.address}/{repo}")
    assert json.loads(proc.stdout)["Tags"] == ["keep"], describe(proc)
    pulled = pull_dir(clients, keep, tmp_path / "keep")
    assert_same_image(pulled, keep_manifest, keep_blobs)


def test_docker_v2s2_push_and_pull(
    clients: Clients, registry, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1", labels={"org.example.format": "v2s2"})
    blobs = layout_contents(layout, "v1")
    ref = f"docker://{registry.address}/{repo}:v1"

    push(clients, layout, "v1", ref, "--format", "v2s2")

    manifest = raw_manifest(clients, ref)
    doc = json.loads(manifest)
    assert doc["mediaType"] == DOCKER_MANIFEST
    assert doc["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {layer["mediaType"] for layer in doc["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }
    digest = digest_of(manifest)
    # What the registry stored and serves: the Docker media type and the same bytes.
    r = http.get(
        f"/v2/{repo}/manifests/v1", headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == DOCKER_MANIFEST
    assert r.headers["docker-content-digest"] == digest
    assert r.content == manifest
    r = http.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200
    assert r.headers["content-type"] == DOCKER_MANIFEST
    assert int(r.headers["content-length"]) == len(manifest)

    proc = clients.skopeo("inspect", TLS, ref)
    assert json.loads(proc.stdout)["Labels"] == {"org.example.format": "v2s2"}
    pulled = pull_dir(clients, ref, tmp_path / "pulled")
    assert_same_image(pulled, manifest, blobs)  # blobs are the layout's, unchanged
