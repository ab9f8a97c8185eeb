"""Start and stop the servers under test: cargobay and the reference (Distribution 2.8)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from httpc import Auth, Conn
from procs import alive, tree_pids

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
REFERENCE_BIN = "/usr/bin/docker-registry"
BENCH_REPOS = ["bench/blobs", "bench/manifests", "bench/tags", "bench/push"]

REFERENCE_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


class StartError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    label: str
    kind: str  # "cargobay" | "reference"
    cpus: str
    workers: int | None
    data_dir: Path
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    auth: Auth | None = None
    known_pids: set[int] = field(default_factory=set)
    #: cargobay only: serve HTTPS with a certificate from ``cargobay tls init`` made here.
    tls_dir: Path | None = None
    #: cargobay only: settings (``CARGOBAY_*`` variables) of this server's process.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def tls(self) -> ssl.SSLContext | None:
        """The client side of HTTPS: trusts the server's CA. The certificate names host names
        and the bench connects to 127.0.0.1, so only the chain is checked, not the name."""
        if self.tls_dir is None:
            return None
        context = ssl.create_default_context(cafile=self.tls_dir / "ca.crt")
        context.check_hostname = False
        return context

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str) -> str:
        scheme = "https" if self.tls_dir else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def conn(self, timeout: float = 300.0) -> Conn:
        c = Conn("127.0.0.1", self.port, timeout, tls=self.tls)
        c.extra_headers = self.auth.headers() if self.auth else {}
        return c

    def headers(self) -> dict[str, str]:
        return self.auth.headers() if self.auth else {}

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    # -- lifecycle -----------------------------------------------------------------
    def command(self) -> list[str]:
        if self.kind == "reference":
            cfg = self.data_dir.parent / f"{self.label}-config.yml"
            cfg.write_text(REFERENCE_CONFIG.format(root=self.data_dir, port=self.port))
            return [REFERENCE_BIN, "serve", str(cfg)]
        cmd = [str(VENV_PYTHON), "-m", "cargobay", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        if self.tls_dir is not None:
            cmd += ["--tls-cert", str(self.tls_dir / "server.crt")]
            cmd += ["--tls-key", str(self.tls_dir / "server.key")]
        return cmd

    def provision(self) -> None:
        """cargobay: a user ``bench`` (the namespace of the bench repositories) and a fresh
        all-scopes personal access token, used as the bench's credentials (auth stays on)."""
        if self.kind != "cargobay":
            return
        cli = [str(VENV_PYTHON), "-m", "cargobay"]
        where = ["--data-dir", str(self.data_dir)]
        # Operator commands act only on an existing registry: create it first (as serve would).
        migrated = subprocess.run(
            [*cli, "migrate", "--quiet", *where], capture_output=True, text=True
        )
        if migrated.returncode != 0:
            raise StartError(f"{self.label}: cargobay migrate failed: {migrated.stderr}")
        made = subprocess.run(
            [*cli, "user", "create", "bench", *where], capture_output=True, text=True
        )
        if made.returncode != 0 and "already taken" not in made.stderr:
            raise StartError(f"{self.label}: creating the bench user failed: {made.stderr}")
        token = subprocess.run(
            [
                *cli,
                "token",
                "create",
                "--user",
                "bench",
                "--note",
                "bench",
                "--scopes",
                "read:packages,write:packages,delete:packages",
                *where,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        os.environ["CARGOBAY_BENCH_USER"] = "bench"
        os.environ["CARGOBAY_BENCH_TOKEN"] = token

    def start(self, timeout: float = 40.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.provision()
        if self.tls_dir is not None and not (self.tls_dir / "server.crt").exists():
            init = [str(VENV_PYTHON), "-m", "cargobay", "tls", "init", "--hostname", "bench.test"]
            subprocess.run(
                [*init, "--dir", str(self.tls_dir)],
                check=True,
                capture_output=True,
            )
        self.port = free_port()
        cmd = ["taskset", "-c", self.cpus, *self.command()]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(
                    f"{self.label} exited with code {self.proc.returncode} during startup:\n"
                    f"{self.log_tail()}"
                )
            try:
                with Conn("127.0.0.1", self.port, timeout=5, tls=self.tls) as c:
                    r = c.request("GET", "/v2/")
                if r.status in (200, 401):
                    break
                last = f"GET /v2/ -> HTTP {r.status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        else:
            self.stop()
            raise StartError(f"{self.label} not ready after {timeout:.0f}s ({last})")
        self.known_pids = set(tree_pids(self.pid))
        try:
            self.auth = Auth("127.0.0.1", self.port, BENCH_REPOS, tls=self.tls).discover()
        except Exception as e:
            self.stop()
            raise StartError(f"{self.label}: bearer token discovery failed: {e}") from e

    def stop(self) -> None:
        """SIGTERM the PID we started, then SIGKILL whatever of its tree is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.known_pids |= set(tree_pids(self.pid))
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # workers that outlived their parent: only those still in our session
        for pid in self.known_pids - {self.pid}:
            with contextlib.suppress(OSError):
                if alive(pid) and os.getsid(pid) == self.pid:
                    os.kill(pid, signal.SIGKILL)
        self.proc = None


def versions() -> dict[str, str]:
    out: dict[str, str] = {"python": sys.version.split()[0]}
    try:
        r = subprocess.run([REFERENCE_BIN, "--version"], capture_output=True, text=True)
        out["docker-registry"] = r.stdout.strip().split()[-1]
    except OSError as e:
        out["docker-registry"] = f"unavailable ({e})"
    code = (
        "import importlib.metadata as m\n"
        "for p in ('cargobay', 'granian'):\n"
        "    try: print(p, m.version(p))\n"
        "    except Exception: print(p, 'not installed')\n"
    )
    r = subprocess.run([str(VENV_PYTHON), "-c", code], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        name, _, ver = line.partition(" ")
        out[name] = ver
    git = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    rev = git.stdout.strip() if git.returncode == 0 else "no commit"
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    out["cargobay"] = f"{out.get('cargobay', '?')} ({rev}{', dirty tree' if dirty else ''})"
    return out


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": os.uname().release,
        "memory": f"{mem_kib / (1 << 20):.1f} GiB",
    }
