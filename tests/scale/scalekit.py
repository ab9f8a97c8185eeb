"""Helpers for the scale tests: replicas (``cargobay serve`` processes sharing one PostgreSQL
database and one S3 bucket), a private PostgreSQL server to stop and start, the radosgw process
behind the session's S3, OCI layouts written without external tools, and small HTTP helpers.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from kit import digest_of, explain

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from clients import Clients
from processes import crash

MIB = 1024 * 1024
NAMESPACE = "scale"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCTET = {"Content-Type": "application/octet-stream"}

PG_BIN = Path(os.environ.get("CARGOBAY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def path_of(location: str) -> str:
    """An upload ``Location`` (absolute or not) as path + query, to send to any replica."""
    url = httpx.URL(location)
    return url.raw_path.decode()


# -- replicas ------------------------------------------------------------------------------------


@dataclass
class Replica:
    """One ``cargobay serve`` process of a :class:`ReplicaSet`."""

    index: int
    port: int
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    auth: tuple[str, str] | None = None

    host = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def http(self, timeout: float = 60, keepalive: bool = True) -> httpx.Client:
        """An httpx client on this replica with the test credentials (HTTP Basic); without
        ``keepalive`` every request has a connection of its own."""
        limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=timeout, limits=limits)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "cargobay",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            "1",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"replica {self.index} did not become ready:\n{self.log()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def crash(self) -> None:
        """SIGKILL the replica's main process and every worker (a machine crash)."""
        crash(self)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            crash(self)


@dataclass
class ReplicaSet:
    """Replicas sharing ``env`` (database, bucket, token key): see the module docstring."""

    root: Path
    env: dict[str, str]
    replicas: list[Replica] = field(default_factory=list)
    user: str = ""
    token: str = ""

    def __getitem__(self, index: int) -> Replica:
        return self.replicas[index]

    def __len__(self) -> int:
        return len(self.replicas)

    def __iter__(self) -> Iterator[Replica]:
        return iter(self.replicas)

    @property
    def bucket(self) -> str:
        return self.env["CARGOBAY_S3_BUCKET"]

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "cargobay", "migrate", "--data-dir", str(self.root / "migrate")],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cargobay migrate failed:\n{done.stdout}\n{done.stderr}")

    def add(self, count: int, free_port: Callable[[], int]) -> None:
        """Start ``count`` replicas at once and wait until every one answers."""
        new = []
        for _ in range(count):
            index = len(self.replicas)
            replica = Replica(
                index,
                free_port(),
                self.root / f"replica{index}",
                self.root / f"replica{index}.log",
                self.env,
                auth=(self.user, self.token) if self.token else None,
            )
            self.replicas.append(replica)
            new.append(replica)
        for replica in new:
            replica.launch()
        for replica in new:
            replica.wait_ready()

    def provision(self, operator_cli: Callable[..., list[str]], user: str, scopes: str) -> None:
        """The test user, a token with every scope and the organization ``scale``: once, in the
        shared database (any replica's data dir will do, nothing is kept there)."""
        outputs = operator_cli(
            self.root / "operator",
            self.env,
            [
                ["user", "create", user, "--admin"],
                ["token", "create", "--user", user, "--scopes", scopes],
                ["org", "create", NAMESPACE, "--owner", user],
            ],
        )
        self.user, self.token = user, outputs[1]
        for replica in self.replicas:
            replica.auth = (self.user, self.token)

    def restart(self, index: int) -> Replica:
        """Start replica ``index`` again (same port, same settings) after it was killed."""
        replica = self.replicas[index]
        assert not replica.alive, "stop or crash the replica first"
        replica.launch()
        replica.wait_ready()
        return replica

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()

    def logs(self) -> str:
        return "\n".join(f"--- replica {r.index} ---\n{r.log()[-4000:]}" for r in self.replicas)


# -- PostgreSQL ----------------------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL server of its own (``initdb`` + ``pg_ctl``), to stop and start at will.

    Runs as the ``postgres`` user when the tests run as root (PostgreSQL refuses root), in a
    temporary directory owned by it. ``url`` names database ``postgres`` on 127.0.0.1:port.
    """

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL binaries in {PG_BIN} (set CARGOBAY_TEST_PG_BIN)")
        self.as_user: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="cargobay-pg-"))
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = 0
        self._run(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-N")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str | os.PathLike[str], timeout: float = 60) -> None:
        done = subprocess.run(
            [*self.as_user, *map(str, cmd)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.dir,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{cmd} failed:\n{done.stdout}\n{done.stderr}")

    def start(self, port: int) -> None:
        self.port = port
        options = (
            f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        log = self.dir / "server.log"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the object store's process ------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class RadosGateway:
    """The radosgw process of a ``scripts/ceph-rgw`` cluster (directory ``cluster``) serving
    ``endpoint``: pause it (SIGSTOP: it accepts connections and never answers), resume it, kill
    it (connections are refused) and start it again with the same command line, recorded in the
    cluster's ``pids`` file so that ``scripts/ceph-rgw stop`` stops the new process too.

    :meth:`kill` sends SIGTERM: radosgw exits at once and unregisters its RADOS watches. After
    a SIGKILL the new radosgw's first bucket deletion waits ~30 s for the dead one's watch to
    time out (Ceph's, not cargobay's, behaviour)."""

    cluster: Path
    endpoint: str
    pid: int
    argv: list[str]

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(self.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"radosgw {self.pid} did not exit on SIGTERM")
            time.sleep(0.02)

    def start(self, timeout: float = 60) -> None:
        """Start radosgw again (after :meth:`kill`) and wait until S3 answers."""
        assert not _alive(self.pid), "kill it first"
        with (self.cluster / "log" / "client.rgw.out").open("ab") as out:
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = process.pid
        with (self.cluster / "pids").open("a") as pids:
            pids.write(f"client.rgw {process.pid} radosgw\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"radosgw exited at start; see {self.cluster}/log/")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.endpoint + "/", timeout=2).status_code < 500:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"radosgw did not answer at {self.endpoint} within {timeout} s")


def find_radosgw(cluster: Path, endpoint: str) -> RadosGateway | None:
    """The live radosgw that ``scripts/ceph-rgw`` started in ``cluster`` for ``endpoint``."""
    env, pids = cluster / "env", cluster / "pids"
    if not env.exists() or f"CARGOBAY_TEST_S3_ENDPOINT={endpoint}\n" not in env.read_text():
        return None
    for line in reversed(pids.read_text().splitlines()):
        _name, pid, exe = line.split()
        if exe == "radosgw" and _alive(int(pid)):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            return RadosGateway(cluster, endpoint, int(pid), [a.decode() for a in argv])
    return None


# -- images and blobs ----------------------------------------------------------------------------


def tar_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip-compressed tar layer holding ``files`` and its diff ID (the digest of the tar):
    clients push compressed layers as they are (level 1: the contents are random anyway)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), compresslevel=1, mtime=0), digest_of(out.getvalue())


@dataclass(frozen=True)
class Image:
    """A single-platform OCI image written as an OCI layout ``layout`` tagged ``tag``."""

    layout: Path
    tag: str
    manifest: bytes
    blobs: dict[str, bytes]  # config and layers, by digest

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def layers(self) -> list[str]:
        return [layer["digest"] for layer in json.loads(self.manifest)["layers"]]


def build_layout(layout: Path, tag: str, layer_sizes: Sequence[int]) -> Image:
    """An OCI layout with one image of ``len(layer_sizes)`` gzipped tar layers of random
    files (so the blobs are new to every registry), written without external tools."""
    blobs: dict[str, bytes] = {}
    layers = []
    diff_ids = []
    for i, size in enumerate(layer_sizes):
        data, diff_id = tar_layer({f"layer{i}/random.bin": secrets.token_bytes(size)})
        diff_ids.append(diff_id)
        blobs[digest_of(data)] = data
        layers.append({"mediaType": OCI_LAYER, "digest": digest_of(data), "size": len(data)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"org.opencontainers.image.description": f"scale {tag}"}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    blobs[digest_of(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": layers,
        }
    ).encode()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for data in [*blobs.values(), manifest]:
        (layout / "blobs" / "sha256" / digest_of(data).split(":")[1]).write_bytes(data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(manifest),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    return Image(layout, tag, manifest, blobs)


def small_manifest(
    config_digest: str, config_size: int, layer: tuple[str, int], note: str
) -> bytes:
    """A manifest over an existing config and layer, made unique by an annotation."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer[0], "size": layer[1]}],
            "annotations": {"org.example.note": note},
        }
    ).encode()


def upload_monolithic(http: httpx.Client, repo: str, data: bytes) -> str:
    """POST + PUT ``?digest=`` with the whole body; returns the digest."""
    digest = digest_of(data)
    r = http.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, explain(r)
    r = http.put(
        httpx.URL(path_of(r.headers["location"])).copy_merge_params({"digest": digest}),
        content=data,
        headers=OCTET,
    )
    assert r.status_code == 201, explain(r)
    return digest


def upload_status(http: httpx.Client, location: str) -> int:
    """The byte count an upload holds, from ``GET`` on its URL (``Range: 0-<last>``)."""
    r = http.get(path_of(location))
    assert r.status_code == 204, explain(r)
    end = int(r.headers["range"].split("-", 1)[1])
    return 0 if end == 0 else end + 1


def patch(http: httpx.Client, location: str, data: bytes, start: int) -> str:
    """One chunk with ``Content-Range``; asserts 202 and the new range; returns the Location."""
    r = http.patch(
        path_of(location),
        content=data,
        headers={**OCTET, "Content-Range": f"{start}-{start + len(data) - 1}"},
    )
    assert r.status_code == 202, explain(r)
    assert r.headers["range"] == f"0-{start + len(data) - 1}", explain(r)
    return str(r.headers["location"])


def sign_in(clients: Clients, replica_set: ReplicaSet) -> None:
    """Store the test credentials for every replica in the clients' auth files."""
    for replica in replica_set:
        clients.store_credentials(replica.address, replica_set.user, replica_set.token)


def fetch_blob(http: httpx.Client, repo: str, digest: str) -> bytes:
    """GET a blob through a replica, following its redirect (to S3); asserts 200."""
    r = http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert r.status_code == 200, explain(r)
    return r.content


@dataclass(frozen=True)
class RawExchange:
    """What :func:`raw_request_then_another` saw on one connection."""

    status_line: str
    headers: dict[str, str]
    #: The status line of the answer to a second request on the same connection, or why
    #: there was none ("EOF": the server closed the connection without answering it).
    next_answer: str

    @property
    def announced_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def raw_request_then_another(
    port: int, head: str, body: bytes, then: str = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
) -> RawExchange:
    """Send ``head`` + ``body`` in one go on a new connection, read the whole answer, then send
    the request ``then`` on the same connection and read its status line. (A raw socket: HTTP
    clients hide a connection the server closed by opening another, when they notice.)"""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.encode() + body)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = s.recv(65536)
            if not data:
                raise AssertionError(f"connection closed before an answer: {buffer!r}")
            buffer += data
        raw_head, _, rest = buffer.partition(b"\r\n\r\n")
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            data = s.recv(65536)
            if not data:
                break
            rest += data
        try:
            s.sendall(then.encode())
            data = s.recv(65536)
            next_answer = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "EOF"
        except OSError as e:
            next_answer = type(e).__name__
    return RawExchange(status_line, headers, next_answer)


def parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads at once; their results in order (exceptions re-raised)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]
