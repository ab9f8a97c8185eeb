"""buildah and podman (vfs storage private to the session) pushing to and pulling from a registry.

``buildah from scratch`` + ``copy`` + ``commit`` builds an image without running anything;
``podman run`` is not available here, so podman is used for ``pull``/``push``/``inspect`` only.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from clients import Clients
from images import (
    PulledDir,
    build_image,
    describe,
    layer_files,
    layout_contents,
    layout_manifest,
    random_bytes,
)
from kit import digest_of

pytestmark = pytest.mark.e2e

TLS = "--tls-verify=false"


def build_with_buildah(clients: Clients, tmp_path: Path, name: str, payload: bytes) -> str:
    """``buildah from scratch``, copy ``payload`` to ``/payload.bin``, label, commit ``name``."""
    (tmp_path / "payload.bin").write_bytes(payload)
    ctr = clients.buildah("from", "scratch").stdout.strip()
    try:
        clients.buildah("copy", ctr, tmp_path / "payload.bin", "/payload.bin")
        clients.buildah(
            "config",
            "--label",
            "org.example.built-by=buildah",
            "--os",
            "linux",
            "--arch",
            "amd64",
            ctr,
        )
        clients.buildah("commit", "--format", "oci", ctr, name)
    finally:
        clients.buildah("rm", ctr, check=False)
    return name


def test_buildah_push_pulled_back_with_skopeo(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    payload = random_bytes(64 * 1024)
    image = build_with_buildah(clients, tmp_path, f"localhost/{repo}:built", payload)
    digestfile = tmp_path / "digest"
    ref = f"docker://{registry.address}/{repo}:v1"

    clients.buildah("push", TLS, "--digestfile", digestfile, image, ref)

    pushed_digest = digestfile.read_text().strip()
    manifest = clients.skopeo("inspect", "--raw", TLS, ref).stdout.encode()
    assert digest_of(manifest) == pushed_digest
    pulled = PulledDir(tmp_path / "pulled")
    clients.skopeo("copy", "--src-tls-verify=false", ref, f"dir:{pulled.path}")
    assert pulled.manifest() == manifest
    doc = json.loads(manifest)
    config = json.loads(pulled.blob(doc["config"]["digest"]))
    assert config["config"]["Labels"]["org.example.built-by"] == "buildah"
    (layer,) = doc["layers"]
    layer_bytes = pulled.blob(layer["digest"])
    assert len(layer_bytes) == layer["size"]
    assert layer_files(layer_bytes)["payload.bin"] == payload
    # buildah compresses while pushing; the uncompressed digest is the config's diff_id.
    assert config["rootfs"]["diff_ids"] == [digest_of(gzip.decompress(layer_bytes))]


def test_podman_pull_then_push_elsewhere(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    digest = build_image(layout, "v1", labels={"org.example.tool": "podman"})
    blobs = layout_contents(layout, "v1")
    _, manifest = layout_manifest(layout, "v1")
    src = f"{registry.address}/{repo}:v1"
    clients.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{src}")

    clients.podman("pull", TLS, src)

    proc = clients.podman("image", "inspect", src)
    (info,) = json.loads(proc.stdout)
    assert info["Digest"] == digest, describe(proc)
    assert info["Labels"] == {"org.example.tool": "podman"}
    assert f"{registry.address}/{repo}@{digest}" in info["RepoDigests"], describe(proc)

    # Push what podman has to another repository and tag, then check it with skopeo.
    dest = f"{registry.address}/{repo}-copy:pushed"
    digestfile = tmp_path / "digest"
    clients.podman("push", TLS, "--digestfile", digestfile, src, f"docker://{dest}")
    pushed_digest = digestfile.read_text().strip()
    pushed = clients.skopeo("inspect", "--raw", TLS, f"docker://{dest}").stdout.encode()
    assert digest_of(pushed) == pushed_digest
    pulled = PulledDir(tmp_path / "pulled")
    clients.skopeo("copy", "--src-tls-verify=false", f"docker://{dest}", f"dir:{pulled.path}")
    assert pulled.manifest() == pushed
    doc = json.loads(pushed)
    # podman may rewrite the manifest, but config and layers are the bytes first pushed.
    original = json.loads(manifest)
    assert doc["config"]["digest"] == original["config"]["digest"]
    assert pulled.blob(doc["config"]["digest"]) == blobs[original["config"]["digest"]]
    for layer in doc["layers"]:
        assert layer["digest"] in blobs, f"podman pushed an unknown layer {layer}"
        assert pulled.blob(layer["digest"]) == blobs[layer["digest"]]


def test_podman_push_of_buildah_image_then_pull_by_digest(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    payload = random_bytes(32 * 1024)
    image = build_with_buildah(clients, tmp_path, f"localhost/{repo}:local", payload)
    ref = f"{registry.address}/{repo}:v1"
    digestfile = tmp_path / "digest"

    clients.podman("push", TLS, "--digestfile", digestfile, image, f"docker://{ref}")
    digest = digestfile.read_text().strip()
    clients.podman("rmi", "--force", image)

    by_digest = f"{registry.address}/{repo}@{digest}"
    clients.podman("pull", TLS, by_digest)
    proc = clients.podman("image", "inspect", by_digest)
    (info,) = json.loads(proc.stdout)
    assert info["Digest"] == digest, describe(proc)
    assert info["Labels"]["org.example.built-by"] == "buildah"
    clients.podman("pull", TLS, ref)  # by tag: the same image
    proc = clients.podman("image", "inspect", "--format", "{{.Digest}}", ref)
    assert proc.stdout.strip() == digest

    pulled = PulledDir(tmp_path / "pulled")
    clients.skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{pulled.path}")
    assert digest_of(pulled.manifest()) == digest
    doc = json.loads(pulled.manifest())
    (layer,) = doc["layers"]
    assert layer_files(pulled.blob(layer["digest"]))["payload.bin"] == payload
