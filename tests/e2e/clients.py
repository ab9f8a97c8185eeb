"""Container CLIs (skopeo, buildah, podman, docker) with private storage and configuration.

See ``make_clients`` for what is isolated and how.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from images import run

SYSTEM_CACHE_DIR = "/var/lib/containers"


@dataclass
class Clients:
    """Container CLIs bound to an isolated configuration under ``root``."""

    root: Path
    env: dict[str, str]
    wrapper: list[str] = field(default_factory=list)
    #: Short on purpose: podman refuses a runroot longer than 50 characters, and a test's
    #: temporary directory under a parallel worker (``/tmp/pytest-of-root/pytest-NNN/popen-gw0/
    #: clients0/run``) is longer; see :func:`short_runroot`.
    runroot: Path = field(default_factory=lambda: short_runroot())

    def _run(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        check: bool = True,
        timeout: float = 120,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.wrapper, *cmd], env=self.env, check=check, timeout=timeout, input=input)

    def skopeo(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        timeout: float = 120,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self._run(["skopeo", *args], check=check, timeout=timeout, input=input)

    def buildah(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        timeout: float = 120,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        base = [
            "buildah",
            "--root",
            self.root / "storage" / "root",
            "--runroot",
            self.runroot,
            "--storage-driver",
            "vfs",
        ]
        return self._run([*base, *args], check=check, timeout=timeout, input=input)

    def podman(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        timeout: float = 120,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        base = [
            "podman",
            "--root",
            self.root / "storage" / "root",
            "--runroot",
            self.runroot,
            "--storage-driver",
            "vfs",
            "--tmpdir",
            self.root / "podman" / "tmp",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]
        return self._run([*base, *args], check=check, timeout=timeout, input=input)

    def docker(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        timeout: float = 60,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self._run(["docker", *args], check=check, timeout=timeout, input=input)

    # -- credentials ------------------------------------------------------------------------

    @property
    def auth_file(self) -> Path:
        """The containers auth file (skopeo, buildah, podman)."""
        return Path(self.env["REGISTRY_AUTH_FILE"])

    @property
    def docker_config(self) -> Path:
        """The docker CLI's ``config.json`` (containers/image reads it too)."""
        return Path(self.env["DOCKER_CONFIG"]) / "config.json"

    def store_credentials(self, address: str, user: str, token: str) -> None:
        """Sign every client in to ``address`` (``host:port``): an ``auths`` entry in the auth
        file and in the docker config, as ``podman login``/``docker login`` would write."""
        entry = base64.b64encode(f"{user}:{token}".encode()).decode()
        for path in (self.auth_file, self.docker_config):
            config = json.loads(path.read_text()) if path.exists() else {}
            config.setdefault("auths", {})[address] = {"auth": entry}
            path.write_text(json.dumps(config, indent=1) + "\n")

    def without_credentials(self, root: Path) -> Clients:
        """The same clients (same image storage) with an empty auth file and docker config of
        their own under ``root``: they sign in to nothing unless told to."""
        (root / "docker").mkdir(parents=True, exist_ok=True)
        (root / "auth.json").write_text('{"auths": {}}\n')
        env = {
            **self.env,
            "REGISTRY_AUTH_FILE": str(root / "auth.json"),
            "DOCKER_CONFIG": str(root / "docker"),
        }
        return replace(self, env=env)


def _mount_namespace_wrapper(cache_dir: Path) -> list[str]:
    """``unshare`` prefix that hides the system blob-info cache, or ``[]`` if unavailable."""
    script = f'mkdir -p {SYSTEM_CACHE_DIR} && mount --bind "$0" {SYSTEM_CACHE_DIR} && exec "$@"'
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(cache_dir)]
    try:
        probe = subprocess.run([*wrapper, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return wrapper if probe.returncode == 0 else []


def short_runroot() -> Path:
    """A fresh directory for podman's and buildah's run state, short enough for podman."""
    return Path(tempfile.mkdtemp(prefix="cb-run-", dir="/tmp"))


def make_clients(root: Path) -> Clients:
    """Write an isolated configuration under ``root`` and return clients that use it.

    * ``HOME`` holds ``.config/containers/policy.json`` (accept anything), which
      containers/image prefers over ``/etc/containers/policy.json``;
    * ``CONTAINERS_REGISTRIES_CONF``, ``CONTAINERS_STORAGE_CONF`` (driver ``vfs``),
      ``CONTAINERS_CONF``, ``REGISTRY_AUTH_FILE``, ``DOCKER_CONFIG`` and ``TMPDIR`` point here;
    * buildah and podman also get explicit ``--root/--runroot/--storage-driver vfs`` (one
      store for both, as on a real machine: podman sees what buildah commits);
    * as root, containers/image keeps a blob-location cache in ``/var/lib/containers/cache``
      (no flag moves it); where a private mount namespace is available, every client runs in
      one in which that directory is bind-mounted from ``root/cache``.
    """
    home = root / "home"
    runroot = short_runroot()
    (home / ".config" / "containers").mkdir(parents=True)
    (home / ".config" / "containers" / "policy.json").write_text(
        '{"default": [{"type": "insecureAcceptAnything"}]}\n'
    )
    (root / "registries.conf").write_text("unqualified-search-registries = []\n")
    (root / "storage.conf").write_text(
        '[storage]\ndriver = "vfs"\n'
        f'graphroot = "{root / "storage" / "root"}"\nrunroot = "{runroot}"\n'
    )
    for sub in ("tmp", "docker", "cache", "podman/tmp", "xdg-runtime"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "containers.conf").write_text(
        f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
        f'tmp_dir = "{root / "podman" / "tmp"}"\n'
    )
    (root / "auth.json").write_text('{"auths": {}}\n')
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(root / "xdg-runtime"),
        "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "REGISTRY_AUTH_FILE": str(root / "auth.json"),
        "DOCKER_CONFIG": str(root / "docker"),
        "TMPDIR": str(root / "tmp"),
    }
    return Clients(root, env, _mount_namespace_wrapper(root / "cache"), runroot)


TARGET = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay")
ON_REFERENCE = TARGET == "reference"
"""True when the session runs against the reference registry (CNCF Distribution 2.8.2)."""
