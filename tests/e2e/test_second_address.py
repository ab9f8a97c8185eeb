"""The README's "running it for real", followed on a second address of this machine (the
loopback alias 127.0.0.2, never a real interface): ``serve --host 127.0.0.2 --base-url ...``,
then ``docker login``, a push and a pull by a client that only knows that address."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from clients import make_clients
from images import build_image, layout_manifest

pytestmark = pytest.mark.e2e

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay's own command", allow_module_level=True)

HOST = "127.0.0.2"


def _cargobay(*args: str, data: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "cargobay", *args, "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, 0))
        except OSError as exc:
            pytest.skip(f"no loopback alias {HOST} here: {exc}")
        port = probe.getsockname()[1]
    data = tmp_path_factory.mktemp("second-address") / "data"
    base_url = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
    log = (data.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cargobay", "serve", "--host", HOST, "--port", str(port),
         "--base-url", base_url, "--data-dir", str(data)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base_url}/v2/", timeout=2).status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert proc.poll() is None, (data.parent / "serve.log").read_text()
        yield base_url, data
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_clients_on_the_second_address_login_push_and_pull(
    registry: tuple[str, Path], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base_url, data = registry
    address = base_url.removeprefix("http://")
    _cargobay("user", "create", "octo", "--admin", data=data)
    token = _cargobay(
        "token", "create", "--user", "octo", "--scopes", "read:packages,write:packages",
        data=data,
    )  # fmt: skip

    # every address the registry hands out is the base URL, never 127.0.0.1 or 0.0.0.0
    challenge = httpx.get(f"{base_url}/v2/", timeout=30).headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{base_url}/token",service="{address}"'
    started = httpx.post(f"{base_url}/v2/octo/probe/blobs/uploads/", auth=("octo", token))
    assert started.status_code == 202
    location = started.headers["Location"]
    assert location.startswith(f"{base_url}/v2/") or location.startswith("/v2/"), location

    clients = make_clients(tmp_path_factory.mktemp("c"))  # podman wants a short runroot
    login = clients.docker(
        "login", address, "-u", "octo", "--password-stdin", input=f"{token}\n".encode()
    )
    assert "Login Succeeded" in login.stdout
    assert address in json.loads(clients.docker_config.read_text())["auths"]

    # push with the credentials docker login stored (containers/image reads them)
    layout = tmp_path / "layout"
    build_image(layout, "v1")
    digest, manifest = layout_manifest(layout, "v1")
    clients.skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{address}/octo/demo:1.0"
    )
    pulled = clients.podman("pull", "--tls-verify=false", f"{address}/octo/demo:1.0")
    assert pulled.returncode == 0
    inspected = clients.docker("manifest", "inspect", "--insecure", f"{address}/octo/demo:1.0")
    assert json.loads(inspected.stdout)["layers"] == json.loads(manifest)["layers"]
    head = httpx.head(f"{base_url}/v2/octo/demo/manifests/1.0", auth=("octo", token), timeout=30)
    assert head.headers["Docker-Content-Digest"] == digest
