"""Registry processes for tests: ``cargobay serve`` (or, with ``CARGOBAY_TEST_TARGET=reference``,
Debian's ``docker-registry``) on a free loopback port, in a data directory of its own.

:func:`start_cargobay` waits until ``/v2/`` answers, then provisions the data directory with the
operator CLI: the site administrator :data:`~kit.accounts.TEST_USER`, a personal access token
with every scope and one organization per namespace in :data:`~kit.accounts.NAMESPACES`.
``server.user``/``server.token`` (``server.auth`` for httpx) carry them; a server restarted on
the same data directory keeps them. The reference registry has no accounts: its credentials are
None and clients send none.

Every server log is remembered in :data:`SERVER_LOGS` and every secret handed out to a test in
:data:`SECRETS` (:func:`remember_secret`): at the end of the session no log may hold one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kit.accounts import ALL_SCOPES, NAMESPACES, TEST_USER
from kit.operator import operator_cli

TARGET = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay")

#: Every cargobay server log this session wrote, and the secrets its tests handed out: when the
#: session ends, no log may hold one (``no_secret_in_any_server_log``).
SERVER_LOGS: set[Path] = set()
SECRETS: set[str] = set()
#: What a personal access or workflow token, or a registry (bearer) token, looks like: none of
#: them belongs in a log, whoever it was made for.
TOKEN_SHAPES = re.compile(r"\bcb[pw]_[A-Za-z0-9]{30,}|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")


def remember_secret(value: str, user: str | None = None) -> None:
    """A token or password a test uses: it must never reach a server log (nor, with ``user``,
    the HTTP Basic credentials made of it)."""
    SECRETS.add(value)
    if user is not None:
        SECRETS.add(base64.b64encode(f"{user}:{value}".encode()).decode())


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
    #: The account the tests act as and its personal access token (None on the reference).
    user: str | None = None
    token: str | None = None

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

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL to the whole group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    @property
    def auth(self) -> tuple[str, str] | None:
        """``(user, token)`` for HTTP Basic (``httpx``'s ``auth=``), or None without accounts."""
        if self.user is None or self.token is None:
            return None
        return (self.user, self.token)

    @property
    def has_accounts(self) -> bool:
        return self.user is not None

    def cli(self, *args: str) -> str:
        """Run the operator command ``cargobay ARGS --data-dir D`` with this server's settings;
        returns its stdout."""
        return operator_cli(self.data_dir, self.env, [list(args)])[0]

    def create_namespace(self, name: str) -> None:
        """Create the organization ``name`` (owned by the test user) so it can be pushed to.
        Nothing to do on a registry without accounts."""
        if self.has_accounts:
            operator_cli(self.data_dir, self.env, [["org", "create", name, "--owner", TEST_USER]])


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


def _credentials_path(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}-credentials.json"


def _provision(server: Server) -> None:
    """Give ``server`` its test user, token and namespaces (once per data dir: a restarted
    server finds them in the database and the token in a file next to the data dir)."""
    path = _credentials_path(server.data_dir)
    if path.exists():
        saved = json.loads(path.read_text())
    else:
        outputs = operator_cli(
            server.data_dir,
            server.env,
            [
                ["user", "create", TEST_USER, "--admin"],
                ["token", "create", "--user", TEST_USER, "--scopes", ALL_SCOPES],
                *(["org", "create", ns, "--owner", TEST_USER] for ns in NAMESPACES),
            ],
        )
        token = outputs[1]
        assert token.startswith("cbp_") and len(token.split()) == 1, outputs
        saved = {"user": TEST_USER, "token": token}
        path.write_text(json.dumps(saved))
    server.user, server.token = saved["user"], saved["token"]
    remember_secret(saved["token"], saved["user"])
    r = httpx.get(f"{server.url}/v2/", auth=server.auth, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(
            f"the test credentials do not work: GET /v2/ -> {r.status_code} {r.text}"
        )


def start_cargobay(
    data_dir: Path, port: int | None = None, workers: int = 1, **settings: Any
) -> Server:
    """Start ``cargobay serve`` on 127.0.0.1, wait until ``/v2/`` answers and provision the
    test credentials (see the module docstring)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **_settings_env(settings)}
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    SERVER_LOGS.add(log_path)
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
    try:
        _wait_ready(server)
        _provision(server)
    except BaseException:
        server.kill()
        raise
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
