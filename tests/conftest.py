"""Shared fixtures: real server processes on free loopback ports.

``server_factory(**settings)`` starts ``cargobay serve`` in a fresh data directory with the given
settings (as ``CARGOBAY_*`` environment variables) and returns a :class:`Server`. Processes are
stopped by PID at the end of the test session. With ``CARGOBAY_TEST_TARGET=reference`` the same
fixtures start Debian's ``docker-registry`` instead (to check a test against the reference).

cargobay asks for credentials: every new data directory is provisioned with the operator CLI
(``python -m cargobay user/token/org create``) with a site administrator ``tester``, a personal
access token with every scope and one organization per namespace in :data:`NAMESPACES` (the
first path segment of every repository the suites push to). ``server.user``/``server.token``
(``server.auth`` for httpx) carry them; a server restarted on the same data directory keeps
them. The reference registry has no accounts: its credentials are None and clients send none.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TARGET = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say where the real backing services come from, before anything runs."""
    postgres = os.environ.get(
        "CARGOBAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    s3 = os.environ.get("CARGOBAY_TEST_S3_ENDPOINT")
    return [
        f"cargobay: PostgreSQL tests use {postgres} (a fresh database per test or run; they "
        "skip, saying so, if it does not answer; set CARGOBAY_TEST_POSTGRES_URL)",
        "cargobay: S3 tests use "
        + (f"{s3} (CARGOBAY_TEST_S3_ENDPOINT)" if s3 else "a Ceph RGW started by scripts/ceph-rgw")
        + "; browser tests use /usr/bin/chromium",
    ]


#: The site administrator the suites act as, and the scopes of its personal access token.
TEST_USER = "tester"
ALL_SCOPES = "read:packages,write:packages,delete:packages"
#: Namespaces (first path segments) the suites push to; each is created as an organization.
#: A test with a namespace of its own creates it with ``server.create_namespace(name)``.
NAMESPACES = ("api", "e2e", "crash", "scale", "big", "real")

# Runs several operator commands in one interpreter (one start-up instead of one per command):
# argv = data dir, JSON list of argument lists; prints a JSON list of each command's stdout.
_OPERATOR_BATCH = """
import contextlib, io, json, sys
from cargobay.cli import cli
outputs = []
for args in json.loads(sys.argv[2]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli([*args, "--data-dir", sys.argv[1]], standalone_mode=False)
    if code:
        sys.exit(f"cargobay {' '.join(args)} exited {code}: {buf.getvalue()}")
    outputs.append(buf.getvalue().strip())
print(json.dumps(outputs))
"""


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


@pytest.fixture(scope="session")
def remember_secrets() -> Callable[..., None]:
    """``remember(value, user=None)``: :func:`remember_secret` for tests (tokens they create,
    passwords they set)."""
    return remember_secret


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_server_log() -> Iterator[None]:
    """After the whole session (every server stopped), grep every server log for the secrets
    handed out and for anything shaped like a token."""
    yield
    leaks = []
    for path in sorted(SERVER_LOGS):
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        leaks += [f"{path}: a secret handed out to a test" for s in SECRETS if s in text]
        leaks += [f"{path}: {m.group()[:6]}… (a token)" for m in TOKEN_SHAPES.finditer(text)]
    assert not leaks, "secrets reached server logs:\n" + "\n".join(sorted(set(leaks)))


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


def operator_cli(data_dir: Path, env: dict[str, str], commands: list[list[str]]) -> list[str]:
    """Run operator commands (``[["user", "create", ...], ...]``) on ``data_dir`` in one
    process, with the server's settings ``env``; returns each command's stdout, stripped."""
    done = subprocess.run(
        [sys.executable, "-c", _OPERATOR_BATCH, str(data_dir), json.dumps(commands)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"operator CLI {commands} failed:\n{done.stdout}\n{done.stderr}")
    outputs: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return outputs


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
        server.stop()


@pytest.fixture(scope="session")
def registry(server_factory: ServerFactory) -> Server:
    """One registry with default settings, shared by the whole session."""
    return server_factory()


# -- S3 (a Ceph RGW started by scripts/ceph-rgw, or any S3 named by the environment) ------------

CEPH_RGW = Path(__file__).resolve().parent.parent / "scripts" / "ceph-rgw"


@dataclass(frozen=True)
class S3Service:
    """An S3 endpoint and the credentials of a user allowed to create buckets on it."""

    endpoint: str
    access_key: str
    secret_key: str

    def settings(self, bucket: str, **more: Any) -> dict[str, Any]:
        """``server_factory`` settings for a registry storing its blobs in ``bucket``."""
        return {
            "blob_store": "s3",
            "s3_endpoint_url": self.endpoint,
            "s3_bucket": bucket,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            **more,
        }

    def client(self) -> Any:
        """A boto3 S3 client on the service (for checks behind the store's back)."""
        from cargobay.storage.s3_client import make_client

        return make_client(
            endpoint_url=self.endpoint,
            region="us-east-1",
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
        )

    def remove_bucket(self, bucket: str) -> None:
        """Delete ``bucket`` with every object and unfinished multipart upload in it."""
        client = self.client()
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)


def new_bucket_name() -> str:
    return f"cargobay-test-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """S3 for the session: ``CARGOBAY_TEST_S3_ENDPOINT`` (with ``..._ACCESS_KEY`` and
    ``..._SECRET_KEY``) if set, else a one-node Ceph RGW started with ``scripts/ceph-rgw`` and
    stopped at the end of the session. Skips when neither is to be had."""
    endpoint = os.environ.get("CARGOBAY_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Service(
            endpoint,
            os.environ.get("CARGOBAY_TEST_S3_ACCESS_KEY", ""),
            os.environ.get("CARGOBAY_TEST_S3_SECRET_KEY", ""),
        )
        return
    missing = [t for t in ("ceph-mon", "ceph-osd", "radosgw") if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"no S3 to test against: {', '.join(missing)} not installed (Debian: ceph radosgw "
            "ceph-common) and CARGOBAY_TEST_S3_ENDPOINT not set"
        )
    directory = tmp_path_factory.mktemp("ceph") / "cluster"
    started = subprocess.run(
        [str(CEPH_RGW), "start", str(directory)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    try:
        if started.returncode != 0:
            pytest.skip(f"no S3 to test against: scripts/ceph-rgw start failed:\n{started.stderr}")
        values = dict(
            line.split("=", 1) for line in (directory / "env").read_text().splitlines() if line
        )
        yield S3Service(
            values["CARGOBAY_TEST_S3_ENDPOINT"],
            values["CARGOBAY_TEST_S3_ACCESS_KEY"],
            values["CARGOBAY_TEST_S3_SECRET_KEY"],
        )
    finally:
        subprocess.run(
            [str(CEPH_RGW), "stop", str(directory)], capture_output=True, timeout=120, check=False
        )


@pytest.fixture
def s3_bucket(s3_service: S3Service) -> Iterator[str]:
    """A fresh, empty bucket on ``s3_service`` (the test may leave it to the store to create);
    it is removed, with what is in it, after the test."""
    bucket = new_bucket_name()
    yield bucket
    try:
        s3_service.remove_bucket(bucket)
    except Exception as e:  # a bucket the test never created, or already removed
        if "NoSuchBucket" not in str(e):
            raise


# -- parallel runs (pytest-xdist) --------------------------------------------------------------

#: A test on the session's S3 (a Ceph RGW that takes a while to start, and that the scale tests
#: stop and restart): its node id names S3, or it is in ``tests/scale/``.
_ON_S3 = re.compile(r"(?:^|[^a-z0-9])s3(?:[^a-z0-9]|$)")


def xdist_scope(nodeid: str) -> str:
    """The unit of work a parallel worker takes whole: a module (its module-scoped servers
    start once), except that every test on S3 goes to one worker (one Ceph RGW per run)."""
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/scale/") or _ON_S3.search(nodeid.lower()):
        return "s3"
    return module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return ModuleScheduling(config, log)
