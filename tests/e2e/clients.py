"""Container CLIs (skopeo, buildah, podman, docker) with private storage and configuration.

See ``make_clients`` for what is isolated and how.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from images import run

SYSTEM_CACHE_DIR = "/var/lib/containers"


@dataclass
class Clients:
    """Container CLIs bound to an isolated configuration under ``root``."""

    root: Path
    env: dict[str, str]
    wrapper: list[str] = field(default_factory=list)

    def _run(
        self, cmd: Sequence[str | os.PathLike[str]], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.wrapper, *cmd], env=self.env, check=check, timeout=timeout)

    def skopeo(
        self, *args: str | os.PathLike[str], check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._run(["skopeo", *args], check=check, timeout=timeout)

    def buildah(
        self, *args: str | os.PathLike[str], check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        base = [
            "buildah",
            "--root",
            self.root / "storage" / "root",
            "--runroot",
            self.root / "storage" / "run",
            "--storage-driver",
            "vfs",
        ]
        return self._run([*base, *args], check=check, timeout=timeout)

    def podman(
        self, *args: str | os.PathLike[str], check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        base = [
            "podman",
            "--root",
            self.root / "storage" / "root",
            "--runroot",
            self.root / "storage" / "run",
            "--storage-driver",
            "vfs",
            "--tmpdir",
            self.root / "podman" / "tmp",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]
        return self._run([*base, *args], check=check, timeout=timeout)

    def docker(
        self, *args: str | os.PathLike[str], check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self._run(["docker", *args], check=check, timeout=timeout)


def _mount_namespace_wrapper(cache_dir: Path) -> list[str]:
    """``unshare`` prefix that hides the system blob-info cache, or ``[]`` if unavailable."""
    script = f'mkdir -p {SYSTEM_CACHE_DIR} && mount --bind "$0" {SYSTEM_CACHE_DIR} && exec "$@"'
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(cache_dir)]
    try:
        probe = subprocess.run([*wrapper, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return wrapper if probe.returncode == 0 else []


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
    (home / ".config" / "containers").mkdir(parents=True)
    (home / ".config" / "containers" / "policy.json").write_text(
        '{"default": [{"type": "insecureAcceptAnything"}]}\n'
    )
    (root / "registries.conf").write_text("unqualified-search-registries = []\n")
    (root / "storage.conf").write_text(
        '[storage]\ndriver = "vfs"\n'
        f'graphroot = "{root / "storage" / "root"}"\nrunroot = "{root / "storage" / "run"}"\n'
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
    return Clients(root, env, _mount_namespace_wrapper(root / "cache"))


TARGET = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay")
ON_REFERENCE = TARGET == "reference"
"""True when the session runs against the reference registry (CNCF Distribution 2.8.2)."""
