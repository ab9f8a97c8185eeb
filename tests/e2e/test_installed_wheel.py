"""The package as an operator installs it: ``python -m build`` makes a wheel; installed with pip
into a fresh virtual environment outside the checkout, it provides ``cargobay`` with its
migrations, templates and static files, serves a temporary data directory and takes an image
pushed with skopeo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from clients import make_clients
from images import build_image, layout_manifest, run

pytestmark = pytest.mark.e2e

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay's own package", allow_module_level=True)

CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass
class Installed:
    wheel: Path
    venv: Path
    home: Path  # a directory outside the checkout

    @property
    def cargobay(self) -> Path:
        return self.venv / "bin" / "cargobay"

    def env(self) -> dict[str, str]:
        """No trace of the checkout: no PYTHONPATH, no VIRTUAL_ENV, no cargobay settings."""
        drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        env = {
            k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CARGOBAY_")
        }
        env["PATH"] = f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        return env

    def run(self, *args: str | os.PathLike[str], input: str = "") -> str:
        done = subprocess.run(
            ["cargobay", *map(str, args)],
            env=self.env(),
            cwd=self.home,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    project = root / "project"  # a copy: building leaves build/ and egg-info behind
    shutil.copytree(
        CHECKOUT / "src",
        project / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, project / name)
    dist = root / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", dist, project], timeout=600)
    (wheel,) = dist.glob("cargobay-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv], timeout=300)
    run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "-c",
         CHECKOUT / "constraints.txt", wheel],
        timeout=600,
    )  # fmt: skip
    home = root / "home"
    home.mkdir()
    return Installed(wheel, venv, home)


def test_the_wheel_holds_migrations_templates_and_static_files(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for expected in (
        "cargobay/metadata/migrations/env.py",
        "cargobay/metadata/migrations/script.py.mako",
        "cargobay/metadata/migrations/versions/0001_registry_core.py",
        "cargobay/web/templates/base.html",
        "cargobay/web/static/style.css",
        "cargobay/auth/common-passwords.txt",
        "cargobay/py.typed",
    ):
        assert expected in names, expected
    versions = {n for n in names if n.startswith("cargobay/metadata/migrations/versions/")}
    in_checkout = {
        f"cargobay/metadata/migrations/versions/{p.name}"
        for p in (CHECKOUT / "src/cargobay/metadata/migrations/versions").glob("*.py")
    }
    assert versions == in_checkout
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(installed.wheel).read(metadata).decode()
    assert "Provides-Extra: postgres" in text and "Provides-Extra: s3" in text


def test_cargobay_is_on_path_and_runs_from_the_installed_files(installed: Installed) -> None:
    assert shutil.which("cargobay", path=installed.env()["PATH"]) == str(installed.cargobay)
    assert installed.run("--version").startswith("cargobay ")
    where = subprocess.run(
        [installed.venv / "bin" / "python", "-c", "import cargobay; print(cargobay.__file__)"],
        env=installed.env(),
        cwd=installed.home,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.venv)), where


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``cargobay serve`` of the installed package on a temporary data directory."""
    port = _free_port()
    data = tmp_path / "data"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        ["cargobay", "serve", "--port", str(port), "--data-dir", str(data)],
        env=installed.env(),
        cwd=installed.home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/v2/", timeout=2).status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield f"127.0.0.1:{port}", data
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_the_installed_registry_takes_an_image_pushed_with_skopeo(
    installed: Installed, served: tuple[str, Path], tmp_path: Path
) -> None:
    address, data = served
    installed.run("user", "create", "operator", "--admin", "--data-dir", data)
    token = installed.run(
        "token", "create", "--user", "operator", "--scopes", "read:packages,write:packages",
        "--data-dir", data,
    ).strip()  # fmt: skip
    layout = tmp_path / "layout"
    build_image(layout, "v1")
    digest, manifest = layout_manifest(layout, "v1")
    clients = make_clients(tmp_path / "clients")
    clients.skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"operator:{token}",
        f"oci:{layout}:v1", f"docker://{address}/operator/hello:1.0",
    )  # fmt: skip
    raw = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", f"operator:{token}",
        f"docker://{address}/operator/hello:1.0",
    ).stdout  # fmt: skip
    assert json.loads(raw) == json.loads(manifest)
    # the templates and static files came with the wheel
    page = httpx.get(f"http://{address}/login", timeout=30)
    assert page.status_code == 200 and "<h1>Sign in</h1>" in page.text
    css = httpx.get(f"http://{address}/static/style.css", timeout=30)
    expected = (CHECKOUT / "src/cargobay/web/static/style.css").read_text()
    assert (css.status_code, css.text) == (200, expected)
    tags = httpx.get(
        f"http://{address}/v2/operator/hello/tags/list", auth=("operator", token), timeout=30
    )
    assert tags.json() == {"name": "operator/hello", "tags": ["1.0"]}
    head = httpx.head(
        f"http://{address}/v2/operator/hello/manifests/1.0", auth=("operator", token), timeout=30
    )
    assert head.headers["Docker-Content-Digest"] == digest
