"""Shared fixtures: real server processes on free loopback ports.

``server_factory(**settings)`` starts ``cargobay serve`` in a fresh data directory with the given
settings (as ``CARGOBAY_*`` environment variables) and returns a :class:`Server`. Processes are
stopped by PID at the end of the test session. With ``CARGOBAY_TEST_TARGET=reference`` the same
fixtures start Debian's ``docker-registry`` instead (to check a test against the reference).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TARGET = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running registry process."""

    host: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def address(self) -> str:
        """``host:port``, what container clients take."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole server (main process and workers: it leads its own session)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"registry exited early:\n{server.log()}")
        try:
            r = httpx.get(f"{server.url}/v2/", timeout=1.0)
            if r.status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"registry did not become ready:\n{server.log()}")


def _settings_env(settings: dict[str, Any]) -> dict[str, str]:
    return {f"CARGOBAY_{k.upper()}": str(v) for k, v in settings.items()}


def start_cargobay(
    data_dir: Path, port: int | None = None, workers: int = 1, **settings: Any
) -> Server:
    """Start ``cargobay serve`` on 127.0.0.1 and wait until ``/v2/`` answers."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **_settings_env(settings)}
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    cmd = [
        sys.executable,
        "-m",
        "cargobay",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(
        "127.0.0.1", port, data_dir, proc, env=_settings_env(settings), log_path=log_path
    )
    _wait_ready(server)
    return server


def start_reference(data_dir: Path, port: int | None = None, **_: Any) -> Server:
    """Start Debian's ``docker-registry`` (CNCF Distribution) with deletes on."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / f"{data_dir.name}-config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {data_dir}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    server = Server("127.0.0.1", port, data_dir, proc, log_path=log_path)
    _wait_ready(server)
    return server


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start registry processes; all are stopped (SIGTERM, then SIGKILL) at session end."""
    started: list[Server] = []
    start = start_reference if TARGET == "reference" else start_cargobay

    def factory(**settings: Any) -> Server:
        server = start(tmp_path_factory.mktemp("registry") / "data", **settings)
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@pytest.fixture(scope="session")
def registry(server_factory: ServerFactory) -> Server:
    """One registry with default settings, shared by the whole session."""
    return server_factory()
