"""Two real host names, real TLS: a ``cargobay serve --hostname`` deployment for end-to-end tests.

* :func:`hosts_entries` adds the site and registry names (unique to the run) to ``/etc/hosts``
  as 127.0.0.1 and removes exactly those lines afterwards;
* :func:`start_isolated` runs ``cargobay tls init`` and starts ``cargobay serve`` either with
  the certificate itself (``direct``) or in plain HTTP behind an nginx from Debian that
  terminates TLS (``nginx``: its own config, pid file and free port, stopped by PID);
* the test user and token are created with the operator CLI, as ``tests/conftest.py`` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HOSTS = Path("/etc/hosts")
TEST_USER = "tester"
PASSWORD = "correct horse battery staple"
ALL_SCOPES = "read:packages,write:packages,delete:packages"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Held while ``/etc/hosts`` is changed: parallel test workers edit it too.
HOSTS_LOCK = Path("/tmp/cargobay-test-hosts.lock")


@contextlib.contextmanager
def _hosts_locked() -> Iterator[None]:
    with HOSTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def hosts_entries(*names: str) -> Iterator[None]:
    """``names`` resolve to 127.0.0.1 (through ``/etc/hosts``) inside the block."""
    marker = f"# cargobay-test {secrets.token_hex(4)}"
    line = f"127.0.0.1 {' '.join(names)} {marker}\n"
    with _hosts_locked(), HOSTS.open("a") as hosts:
        hosts.write(line)
    try:
        yield
    finally:
        # Rewritten in place (the file may be a bind mount): only this run's line goes.
        with _hosts_locked():
            kept = [entry for entry in HOSTS.read_text().splitlines(True) if marker not in entry]
            HOSTS.write_text("".join(kept))


def unique_hostname() -> str:
    return f"cb{secrets.token_hex(4)}.test"


@dataclass
class Deployment:
    """A running isolated deployment: names, public URLs, the CA, the processes to stop."""

    mode: str  # "direct" or "nginx"
    site_host: str
    registry_host: str
    port: int  # the public port (cargobay's or nginx's)
    tls_dir: Path
    data_dir: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nginx_pid_file: Path | None = None
    token: str = ""
    logs: list[Path] = field(default_factory=list)

    @property
    def site_url(self) -> str:
        return f"https://{self.site_host}:{self.port}"

    @property
    def registry_url(self) -> str:
        return f"https://{self.registry_host}:{self.port}"

    @property
    def registry_address(self) -> str:
        return f"{self.registry_host}:{self.port}"

    @property
    def ca(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def cert_dir(self) -> Path:
        """A directory with only ``ca.crt``: what ``--cert-dir`` wants."""
        return self.tls_dir / "trust"

    @property
    def auth(self) -> tuple[str, str]:
        return (TEST_USER, self.token)

    def http(self, **kwargs: Any) -> httpx.Client:
        """An HTTPS client that trusts only the deployment's CA."""
        return httpx.Client(verify=ssl.create_default_context(cafile=self.ca), **kwargs)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def cli(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cargobay", *args, "--data-dir", str(self.data_dir)],
            env={**os.environ, **self.env},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    def stop(self) -> None:
        if self.nginx_pid_file is not None and self.nginx_pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.nginx_pid_file.read_text().strip()), signal.SIGQUIT)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


NGINX_CONF = """\
worker_processes 1;
pid {pid};
error_log {root}/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    # Registry pushes are large and streamed: no size limit, no buffering either way.
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        server_name {site} {registry};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            # The edge proxy states the address it saw; a client's own header is dropped.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_read_timeout 900s;
            proxy_send_timeout 900s;
        }}
    }}
}}
"""


def _wait(deployment: Deployment, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with deployment.http(timeout=2) as client:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in deployment.processes):
                raise RuntimeError(f"exited early:\n{deployment.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{deployment.registry_url}/v2/").status_code == 401:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"not ready:\n{deployment.log()}")


def _block_server_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGTERM})


def start_isolated(root: Path, mode: str = "direct", **settings: Any) -> Deployment:
    """Start a deployment under ``root`` whose names already resolve (see
    :func:`hosts_entries`); ``settings`` become ``CARGOBAY_*`` variables."""
    site = settings.pop("hostname")
    registry = f"containers.{site}"
    tls_dir, data_dir = root / "tls", root / "data"
    subprocess.run(
        [sys.executable, "-m", "cargobay", "tls", "init", "--hostname", site, "--dir", tls_dir],
        check=True,
        capture_output=True,
    )
    (tls_dir / "trust").mkdir()
    shutil.copy(tls_dir / "ca.crt", tls_dir / "trust" / "ca.crt")
    public_port = free_port()
    env = {f"CARGOBAY_{k.upper()}": str(v) for k, v in settings.items()}
    env["CARGOBAY_HOSTNAME"] = site
    # SIGHUP restarts the workers, each given up to shutdown_timeout to finish what it serves
    # (clients of earlier tests may still hold keep-alive connections): keep that short here.
    env.setdefault("CARGOBAY_SHUTDOWN_TIMEOUT", "5")
    cmd = [sys.executable, "-m", "cargobay", "serve", "--host", "127.0.0.1"]
    cmd += ["--data-dir", str(data_dir), "--hostname", site]
    deployment = Deployment(mode, site, registry, public_port, tls_dir, data_dir, env)
    if mode == "direct":
        cmd += ["--port", str(public_port)]
        cmd += ["--tls-cert", str(tls_dir / "server.crt"), "--tls-key", str(tls_dir / "server.key")]
    else:
        upstream = free_port()
        cmd += ["--port", str(upstream)]
        env["CARGOBAY_BASE_URL"] = deployment.site_url
        env["CARGOBAY_TRUSTED_PROXIES"] = "127.0.0.1/32"
        nginx_root = root / "nginx"
        nginx_root.mkdir()
        deployment.nginx_pid_file = nginx_root / "nginx.pid"
        conf = nginx_root / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                pid=deployment.nginx_pid_file,
                root=nginx_root,
                port=public_port,
                site=site,
                registry=registry,
                cert=tls_dir / "server.crt",
                key=tls_dir / "server.key",
                upstream=upstream,
            )
        )
        nginx_log = nginx_root / "stderr.log"
        deployment.logs.append(nginx_log)
        deployment.processes.append(
            subprocess.Popen(
                ["/usr/sbin/nginx", "-c", str(conf), "-p", str(nginx_root)],
                stdout=nginx_log.open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    log = root / "server.log"
    deployment.logs.append(log)
    server = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # As some supervisors do: the server must unblock the signals it acts on (SIGHUP
        # reloads the certificate) rather than inherit a mask that silently drops them.
        preexec_fn=_block_server_signals,
    )
    deployment.processes.append(server)
    try:
        _wait(deployment)
        _provision(deployment)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def _provision(deployment: Deployment) -> None:
    deployment.cli(
        "user", "create", TEST_USER, "--admin", "--password-stdin", input=PASSWORD + "\n"
    )
    deployment.token = deployment.cli(
        "token", "create", "--user", TEST_USER, "--scopes", ALL_SCOPES
    ).split()[-1]
    for namespace in ("e2e",):
        deployment.cli("org", "create", namespace, "--owner", TEST_USER)
