"""A first push into a new repository of one's own namespace, by a plain user (no site
administrator, no organization), with every client; then the user pulls it back.

Each client asks ``/token`` in its own way before the repository exists (containers/image and
the docker CLI ask for ``pull,push`` up front; the ORAS SDK asks for what the challenge
names); the grant must cover the push and keep covering the pulls after it.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import oras.client
import pytest
from clients import ON_REFERENCE, Clients
from images import build_image, describe, layout_manifest, random_bytes
from kit import digest_of, explain

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no accounts"),
]

TLS = "--tls-verify=false"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def plain_user(registry: Any) -> tuple[str, str]:
    login = f"first{secrets.token_hex(3)}"
    registry.cli("user", "create", login)
    token = registry.cli(
        "token", "create", "--user", login, "--scopes", "read:packages,write:packages"
    ).strip()
    return login, token


@pytest.fixture
def signed_in(
    clients: Clients, tmp_path: Path, registry: Any, plain_user: tuple[str, str]
) -> Clients:
    """The session's clients, signed in as the plain user only."""
    own = clients.without_credentials(tmp_path / "own")
    own.store_credentials(registry.address, *plain_user)
    return own


def manifest_of(registry: Any, user: tuple[str, str], repo: str) -> httpx.Response:
    r = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/v1",
        headers={"Accept": OCI_MANIFEST},
        auth=user,
        timeout=30,
    )
    assert r.status_code == 200, explain(r)
    return r


def test_skopeo_and_podman(
    signed_in: Clients, registry: Any, plain_user: tuple[str, str], tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1", labels={"org.example.test": "first-push"})
    digest, _ = layout_manifest(layout, "v1")
    repo = f"{plain_user[0]}/skopeo-{secrets.token_hex(3)}"
    ref = f"{registry.address}/{repo}:v1"
    signed_in.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}")
    assert digest_of(manifest_of(registry, plain_user, repo).content) == digest
    proc = signed_in.skopeo("inspect", "--raw", TLS, f"docker://{ref}")
    assert digest_of(proc.stdout.encode()) == digest, describe(proc)
    signed_in.podman("pull", TLS, ref)
    proc = signed_in.podman("image", "inspect", "--format", "{{.Digest}}", ref)
    assert proc.stdout.strip() == digest, describe(proc)
    again = f"{registry.address}/{plain_user[0]}/podman-{secrets.token_hex(3)}:v1"
    signed_in.podman("push", TLS, ref, f"docker://{again}")
    signed_in.podman("rmi", ref, check=False)


def test_buildah(
    signed_in: Clients, registry: Any, plain_user: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "payload.bin").write_bytes(random_bytes(4096))
    repo = f"{plain_user[0]}/buildah-{secrets.token_hex(3)}"
    image = f"localhost/{repo}:v1"
    ctr = signed_in.buildah("from", "scratch").stdout.strip()
    try:
        signed_in.buildah("copy", ctr, tmp_path / "payload.bin", "/payload.bin")
        signed_in.buildah("config", "--os", "linux", "--arch", "amd64", ctr)
        signed_in.buildah("commit", "--format", "oci", ctr, image)
    finally:
        signed_in.buildah("rm", ctr, check=False)
    digestfile = tmp_path / "digest"
    signed_in.buildah(
        "push", TLS, "--digestfile", digestfile, image, f"docker://{registry.address}/{repo}:v1"
    )
    pushed = digestfile.read_text().strip()
    assert digest_of(manifest_of(registry, plain_user, repo).content) == pushed
    signed_in.buildah("rmi", image, check=False)


def test_docker_cli_reads_what_was_pushed(
    signed_in: Clients, registry: Any, plain_user: tuple[str, str], tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1")
    _, manifest = layout_manifest(layout, "v1")
    repo = f"{plain_user[0]}/docker-{secrets.token_hex(3)}"
    ref = f"{registry.address}/{repo}:v1"
    signed_in.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}")
    proc = signed_in.docker("manifest", "inspect", "--insecure", ref)
    assert json.loads(proc.stdout) == json.loads(manifest), describe(proc)


def test_oras_sdk(registry: Any, plain_user: tuple[str, str], tmp_path: Path) -> None:
    client = oras.client.OrasClient(hostname=registry.address, insecure=True)
    client.login(
        username=plain_user[0],
        password=plain_user[1],
        hostname=registry.address,
        config_path=str(tmp_path / "oras.json"),
    )
    payload = random_bytes(2048)
    (tmp_path / "payload.bin").write_bytes(payload)
    target = f"{registry.address}/{plain_user[0]}/oras-{secrets.token_hex(3)}:v1"
    resp = client.push(
        target=target,
        files=[f"{tmp_path / 'payload.bin'}:application/octet-stream"],
        disable_path_validation=True,
        quiet=True,
    )
    assert resp.status_code == 201, resp.text
    files = client.pull(target=target, outdir=str(tmp_path / "out"))
    assert Path(files[0]).read_bytes() == payload
