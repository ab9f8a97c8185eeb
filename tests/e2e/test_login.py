"""Signing in with each client, and what clients without credentials get.

``docker login``, ``skopeo login`` and ``podman login`` store the test user's personal access
token and the bearer-token flow (``/token``) takes it from there; ``buildah push --creds`` sends
it without storing it; the ORAS SDK signs in with ``login``. Without credentials, a public
package can be pulled (an anonymous registry token), a private one cannot.

Every client here starts from :meth:`Clients.without_credentials` (an empty auth file and docker
config of its own), so only what the test itself does signs it in. The reference registry has
no accounts: the module is skipped there.
"""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
from typing import Any

import httpx
import oras.client
import pytest
from clients import ON_REFERENCE, Clients
from images import (
    PulledDir,
    assert_same_image,
    build_image,
    describe,
    layout_contents,
    layout_manifest,
    random_bytes,
)
from kit import digest_of, explain

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no accounts"),
]

TLS = "--tls-verify=false"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def auth_errors(proc: Any) -> bool:
    """The client reported an authentication failure: a 401 (containers/image says
    ``unauthorized``, or ``HTTP 401`` for a HEAD without a body; the docker CLI
    ``unauthorized: ...``; cargobay's message is ``authentication required``)."""
    text = (proc.stderr + proc.stdout).lower()
    return any(s in text for s in ("unauthorized", "http 401", "authentication required"))


@pytest.fixture
def bare(clients: Clients, tmp_path: Path) -> Clients:
    """The session's clients (same image storage) without any stored credentials."""
    return clients.without_credentials(tmp_path / "bare")


class Published:
    """An image pushed (with the test credentials) to ``repo``: ``ref`` is ``host:port/repo:v1``."""

    def __init__(self, registry: Any, repo: str, layout: Path) -> None:
        self.repo = repo
        self.ref = f"{registry.address}/{repo}:v1"
        self.layout = layout
        self.digest, self.manifest = layout_manifest(layout, "v1")
        self.blobs = layout_contents(layout, "v1")


@pytest.fixture
def published(clients: Clients, registry: Any, repo: str, tmp_path: Path) -> Published:
    """A private image (a new package is private) pushed by the signed-in session clients."""
    layout = tmp_path / "src"
    build_image(layout, "v1", labels={"org.example.test": "login"})
    clients.skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{layout}:v1",
        f"docker://{registry.address}/{repo}:v1",
    )
    return Published(registry, repo, layout)


def login_stdin(registry: Any) -> tuple[str, bytes]:
    user, token = registry.auth
    return user, token.encode() + b"\n"


def stored_auth(path: Path, address: str) -> str | None:
    """The ``auth`` entry a login wrote for ``address`` (None if there is none)."""
    if not path.exists():
        return None
    entry = json.loads(path.read_text()).get("auths", {}).get(address)
    return entry.get("auth") if entry else None


# -- docker -----------------------------------------------------------------------------------


def test_docker_login_then_manifest_inspect(
    bare: Clients, registry: Any, published: Published
) -> None:
    proc = bare.docker("manifest", "inspect", "--insecure", published.ref, check=False)
    assert proc.returncode != 0, describe(proc)
    assert auth_errors(proc), describe(proc)

    user, stdin = login_stdin(registry)
    proc = bare.docker("login", registry.address, "-u", user, "--password-stdin", input=stdin)
    assert "Login Succeeded" in proc.stdout, describe(proc)
    assert stored_auth(bare.docker_config, registry.address), bare.docker_config.read_text()

    proc = bare.docker("manifest", "inspect", "--insecure", published.ref, check=False)
    assert proc.returncode == 0, describe(proc)
    assert json.loads(proc.stdout) == json.loads(published.manifest)


def test_docker_login_with_a_wrong_token_fails(
    bare: Clients, server_factory: Any, tmp_path: Path
) -> None:
    # A server of its own: failed sign-ins count against the client address and the user name,
    # and enough of them would lock the shared registry's test user out for a while.
    server = server_factory()
    alphabet = string.ascii_letters + string.digits
    wrong = "cbp_" + "".join(secrets.choice(alphabet) for _ in range(len(server.token) - 4))
    assert wrong != server.token
    for user, secret in ((server.user, wrong), (server.user, "a-password")):
        proc = bare.docker(
            "login",
            server.address,
            "-u",
            user,
            "--password-stdin",
            input=secret.encode() + b"\n",
            check=False,
        )
        assert proc.returncode != 0, describe(proc)
        assert "unauthorized" in proc.stderr.lower(), describe(proc)
        assert stored_auth(bare.docker_config, server.address) is None
    # ... while the right token signs in.
    user, stdin = login_stdin(server)
    proc = bare.docker("login", server.address, "-u", user, "--password-stdin", input=stdin)
    assert "Login Succeeded" in proc.stdout, describe(proc)


# -- skopeo, podman, buildah -----------------------------------------------------------------


def test_skopeo_login_then_push_and_pull(
    bare: Clients, registry: Any, repo: str, tmp_path: Path
) -> None:
    authfile = tmp_path / "skopeo-auth.json"
    layout = tmp_path / "src"
    build_image(layout, "v1")
    _, manifest = layout_manifest(layout, "v1")
    blobs = layout_contents(layout, "v1")
    ref = f"docker://{registry.address}/{repo}:v1"

    user, stdin = login_stdin(registry)
    bare.skopeo(
        "login",
        TLS,
        "--authfile",
        authfile,
        "-u",
        user,
        "--password-stdin",
        registry.address,
        input=stdin,
    )
    assert stored_auth(authfile, registry.address)

    bare.skopeo("copy", "--authfile", authfile, "--dest-tls-verify=false", f"oci:{layout}:v1", ref)
    pulled = PulledDir(tmp_path / "pulled")
    bare.skopeo("copy", "--authfile", authfile, "--src-tls-verify=false", ref, f"dir:{pulled.path}")
    assert_same_image(pulled, manifest, blobs)
    # Without the auth file the same client gets nowhere: the package is private.
    proc = bare.skopeo("inspect", "--raw", TLS, ref, check=False)
    assert proc.returncode != 0, describe(proc)
    assert auth_errors(proc), describe(proc)


def test_podman_login_then_pull_and_push(
    bare: Clients, registry: Any, published: Published, tmp_path: Path, http: httpx.Client
) -> None:
    authfile = tmp_path / "podman-auth.json"
    user, stdin = login_stdin(registry)
    bare.podman(
        "login",
        TLS,
        "--authfile",
        authfile,
        "-u",
        user,
        "--password-stdin",
        registry.address,
        input=stdin,
    )
    assert stored_auth(authfile, registry.address)

    bare.podman("pull", TLS, "--authfile", authfile, published.ref)
    proc = bare.podman("image", "inspect", "--format", "{{.Digest}}", published.ref)
    assert proc.stdout.strip() == published.digest, describe(proc)

    dest = f"{registry.address}/{published.repo}-pushed:v2"
    digestfile = tmp_path / "digest"
    bare.podman(
        "push",
        TLS,
        "--authfile",
        authfile,
        "--digestfile",
        digestfile,
        published.ref,
        f"docker://{dest}",
    )
    pushed = digestfile.read_text().strip()
    r = http.get(f"/v2/{published.repo}-pushed/manifests/v2", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, explain(r)
    assert digest_of(r.content) == pushed, explain(r)


def test_buildah_push_with_creds(
    bare: Clients, registry: Any, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    payload = random_bytes(8 * 1024)
    (tmp_path / "payload.bin").write_bytes(payload)
    image = f"localhost/{repo}:creds"
    ctr = bare.buildah("from", "scratch").stdout.strip()
    try:
        bare.buildah("copy", ctr, tmp_path / "payload.bin", "/payload.bin")
        bare.buildah("config", "--os", "linux", "--arch", "amd64", ctr)
        bare.buildah("commit", "--format", "oci", ctr, image)
    finally:
        bare.buildah("rm", ctr, check=False)
    ref = f"docker://{registry.address}/{repo}:v1"

    # Without credentials the push is refused ...
    proc = bare.buildah("push", TLS, image, ref, check=False)
    assert proc.returncode != 0, describe(proc)
    assert auth_errors(proc), describe(proc)
    # ... with --creds it goes through.
    user, token = registry.auth
    digestfile = tmp_path / "digest"
    bare.buildah("push", TLS, "--creds", f"{user}:{token}", "--digestfile", digestfile, image, ref)
    r = http.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, explain(r)
    assert digest_of(r.content) == digestfile.read_text().strip(), explain(r)
    bare.buildah("rmi", image, check=False)


# -- anonymous clients -------------------------------------------------------------------------


def test_anonymous_pull_of_a_public_image(
    bare: Clients, registry: Any, published: Published, tmp_path: Path
) -> None:
    src = f"docker://{published.ref}"
    proc = bare.skopeo("inspect", "--raw", TLS, src, check=False)
    assert proc.returncode != 0, f"a new package is private: {describe(proc)}"

    registry.cli("package", "set-visibility", published.repo, "public")

    pulled = PulledDir(tmp_path / "pulled")
    bare.skopeo("copy", "--src-tls-verify=false", src, f"dir:{pulled.path}")
    assert_same_image(pulled, published.manifest, published.blobs)
    # Public means readable by anyone, not writable: an anonymous push is refused.
    proc = bare.skopeo(
        "copy",
        "--retry-times",
        "0",
        "--dest-tls-verify=false",
        f"oci:{published.layout}:v1",
        f"docker://{registry.address}/{published.repo}:anonymous",
        check=False,
    )
    assert proc.returncode != 0, describe(proc)
    assert auth_errors(proc), describe(proc)


def test_anonymous_pull_of_a_private_image_fails(
    bare: Clients, published: Published, tmp_path: Path
) -> None:
    src = f"docker://{published.ref}"
    proc = bare.skopeo(
        "copy",
        "--retry-times",
        "0",
        "--src-tls-verify=false",
        src,
        f"dir:{tmp_path / 'x'}",
        check=False,
    )
    assert proc.returncode != 0, describe(proc)
    assert auth_errors(proc), describe(proc)
    proc = bare.podman("pull", TLS, published.ref, check=False)
    assert proc.returncode != 0, describe(proc)
    assert auth_errors(proc), describe(proc)


# -- ORAS --------------------------------------------------------------------------------------


def test_oras_login_then_push_and_pull(
    registry: Any, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    client = oras.client.OrasClient(hostname=registry.address, insecure=True)
    user, token = registry.auth
    config = tmp_path / "oras-config.json"
    client.login(username=user, password=token, hostname=registry.address, config_path=str(config))
    assert stored_auth(config, registry.address)

    work = tmp_path / "work"
    work.mkdir()
    payload = random_bytes(4000)
    (work / "payload.bin").write_bytes(payload)
    target = f"{registry.address}/{repo}:v1"
    response = client.push(
        target=target,
        files=[f"{work / 'payload.bin'}:application/vnd.cargobay.test.file.v1+bin"],
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, f"{response.status_code} {response.text}"

    out = tmp_path / "pulled"
    files = client.pull(target=target, outdir=str(out))
    assert [Path(f).name for f in files] == ["payload.bin"]
    assert (out / "payload.bin").read_bytes() == payload
    r = http.get(f"/v2/{repo}/blobs/{digest_of(payload)}")
    assert r.status_code == 200, explain(r)
    assert r.content == payload
