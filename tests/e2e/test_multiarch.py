"""Multi-arch images: an OCI image index and a Docker manifest list, pushed with ``--all``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from clients import Clients
from images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    PulledDir,
    build_multiarch,
    describe,
    layout_contents,
    layout_manifest,
    referenced_blobs,
)
from kit import digest_of

pytestmark = pytest.mark.e2e

TLS = "--tls-verify=false"
ALL_TYPES = f"{OCI_INDEX}, {DOCKER_LIST}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"


def test_oci_index_push_and_pull_all(
    clients: Clients, registry, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    multi = build_multiarch(tmp_path / "src", "multi")
    _, index = layout_manifest(multi.layout, "multi")
    expected = layout_contents(multi.layout, "multi")
    ref = f"docker://{registry.address}/{repo}:multi"

    clients.skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{multi.layout}:multi", ref)

    assert clients.skopeo("inspect", "--raw", TLS, ref).stdout.encode() == index
    r = http.get(f"/v2/{repo}/manifests/multi", headers={"Accept": ALL_TYPES})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == OCI_INDEX
    assert r.headers["docker-content-digest"] == multi.digest
    for arch, child in multi.children.items():
        r = http.get(f"/v2/{repo}/manifests/{child}", headers={"Accept": ALL_TYPES})
        assert r.status_code == 200, f"{arch}: {r.text}"
        assert r.content == expected[child]
        assert r.headers["content-type"] == OCI_MANIFEST

    # Pull everything back into a dir: the index and both children, byte for byte.
    pulled = PulledDir(tmp_path / "pulled")
    clients.skopeo("copy", "--all", "--src-tls-verify=false", ref, f"dir:{pulled.path}")
    assert pulled.manifest() == index
    for child in multi.children.values():
        assert pulled.manifest(child) == expected[child]
        for blob in referenced_blobs(expected[child]):
            assert pulled.blob(blob) == expected[blob]
    # ... and into an OCI layout: identical content.
    back = tmp_path / "back"
    clients.skopeo("copy", "--all", "--src-tls-verify=false", ref, f"oci:{back}:multi")
    assert layout_manifest(back, "multi") == (multi.digest, index)
    assert layout_contents(back, "multi") == expected


def test_single_platform_pull_from_index_picks_the_right_child(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    multi = build_multiarch(tmp_path / "src", "multi")
    expected = layout_contents(multi.layout, "multi")
    ref = f"docker://{registry.address}/{repo}:multi"
    clients.skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{multi.layout}:multi", ref)

    for arch, child in multi.children.items():
        pulled = PulledDir(tmp_path / f"pulled-{arch}")
        clients.skopeo(
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            "copy",
            "--src-tls-verify=false",
            ref,
            f"dir:{pulled.path}",
        )
        assert pulled.manifest() == expected[child], arch
        proc = clients.skopeo("--override-arch", arch, "inspect", TLS, ref)
        info = json.loads(proc.stdout)
        # skopeo inspect reports the digest of what the tag names (the index) ...
        assert info["Digest"] == multi.digest, describe(proc)
        # ... and the config of the platform's child.
        assert info["Architecture"] == arch, describe(proc)
        assert info["Labels"] == {"cargobay.test.arch": arch}


def test_docker_manifest_list_push_and_pull_all(
    clients: Clients, registry, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    multi = build_multiarch(tmp_path / "src", "multi")
    expected = layout_contents(multi.layout, "multi")
    ref = f"docker://{registry.address}/{repo}:list"

    clients.skopeo(
        "copy",
        "--all",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        f"oci:{multi.layout}:multi",
        ref,
    )

    listing = clients.skopeo("inspect", "--raw", TLS, ref).stdout.encode()
    doc = json.loads(listing)
    assert doc["mediaType"] == DOCKER_LIST
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == set(multi.children)
    assert {m["mediaType"] for m in doc["manifests"]} == {DOCKER_MANIFEST}
    r = http.get(f"/v2/{repo}/manifests/list", headers={"Accept": ALL_TYPES})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == DOCKER_LIST
    assert r.headers["docker-content-digest"] == digest_of(listing)

    pulled = PulledDir(tmp_path / "pulled")
    clients.skopeo("copy", "--all", "--src-tls-verify=false", ref, f"dir:{pulled.path}")
    assert pulled.manifest() == listing
    for desc in doc["manifests"]:
        child = pulled.manifest(desc["digest"])
        assert digest_of(child) == desc["digest"]
        assert len(child) == desc["size"]
        r = http.get(f"/v2/{repo}/manifests/{desc['digest']}", headers={"Accept": ALL_TYPES})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == DOCKER_MANIFEST
        assert r.content == child
        # Converting the manifest format keeps config and layer bytes as they were.
        for blob in referenced_blobs(child):
            assert pulled.blob(blob) == expected[blob]
