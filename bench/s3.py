"""cargobay vs the reference registry, both storing blobs in S3 (one Ceph RGW). Entry point:
``bench/run --s3 [options]`` (or ``.venv/bin/python bench/s3.py``); see bench/README.md.

    bench/run --s3 [--quick] [--size MIB] [--reps N] [--layers N] [--layer-size MIB]
                   [--workers N] [--output FILE] [--json FILE] [--data-root DIR]

S3 is ``CARGOBAY_TEST_S3_ENDPOINT`` (+ ``_ACCESS_KEY``, ``_SECRET_KEY``, and
``CARGOBAY_TEST_S3_CEPH_DIR`` to count its daemons' CPU) when set, else a one-node Ceph cluster
started with ``scripts/ceph-rgw`` for the run. cargobay keeps its metadata
in a fresh database on PostgreSQL (``CARGOBAY_BENCH_POSTGRES_URL``, default the machine's
server as user postgres) and falls back to SQLite when none answers. The reference is Debian's
``docker-registry`` (Distribution 2.8) with its ``s3`` driver (8 MiB chunks, redirects on).
Each registry gets a bucket of its own. Nothing is pinned: the registries, radosgw, the OSD and
the clients share the machine's cores.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpc import Auth, BlobData, Conn, MiB, download, expect, upload_chunked, upload_put
from procs import CpuMeter, alive, tree_cpu_seconds, tree_pids
from servers import REFERENCE_BIN, VENV_PYTHON, free_port, machine

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
CEPH_RGW = REPO_ROOT / "scripts" / "ceph-rgw"
REPO = "bench/blobs"
POSTGRES_URL = os.environ.get(
    "CARGOBAY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T0 = time.perf_counter()

REFERENCE_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  s3:
    region: us-east-1
    regionendpoint: {endpoint}
    bucket: {bucket}
    accesskey: {access_key}
    secretkey: {secret_key}
    secure: false
    v4auth: true
    chunksize: 8388608
  redirect:
    disable: false
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", flush=True)


# -- S3 ---------------------------------------------------------------------------------------


@dataclass
class S3:
    endpoint: str
    access_key: str
    secret_key: str
    cluster: Path | None = None  # its scripts/ceph-rgw directory, if known

    def client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def daemon_pids(self) -> list[int]:
        """radosgw and ceph-osd of a cluster we started: where the object store's CPU goes."""
        if self.cluster is None:
            return []
        pids = []
        for line in (self.cluster / "pids").read_text().splitlines():
            _, pid, exe = line.split()
            if exe in ("radosgw", "ceph-osd") and alive(int(pid)):
                pids.append(int(pid))
        return pids

    def remove_bucket(self, bucket: str) -> None:
        client = self.client()
        with contextlib.suppress(Exception):
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


@contextlib.contextmanager
def object_store(tmp: Path) -> Iterator[S3]:
    endpoint = os.environ.get("CARGOBAY_TEST_S3_ENDPOINT")
    if endpoint:
        named = os.environ.get("CARGOBAY_TEST_S3_CEPH_DIR")  # to count its daemons' CPU
        yield S3(
            endpoint,
            os.environ.get("CARGOBAY_TEST_S3_ACCESS_KEY", ""),
            os.environ.get("CARGOBAY_TEST_S3_SECRET_KEY", ""),
            Path(named) if named else None,
        )
        return
    cluster = tmp / "ceph"
    log("starting a one-node Ceph cluster with radosgw (scripts/ceph-rgw)")
    done = subprocess.run(
        [sys.executable, str(CEPH_RGW), "start", str(cluster)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    try:
        if done.returncode != 0:
            raise SystemExit(f"scripts/ceph-rgw start failed:\n{done.stderr}")
        values = dict(line.split("=", 1) for line in (cluster / "env").read_text().splitlines())
        yield S3(
            values["CARGOBAY_TEST_S3_ENDPOINT"],
            values["CARGOBAY_TEST_S3_ACCESS_KEY"],
            values["CARGOBAY_TEST_S3_SECRET_KEY"],
            cluster,
        )
    finally:
        subprocess.run(
            [sys.executable, str(CEPH_RGW), "stop", str(cluster)],
            capture_output=True,
            timeout=120,
            check=False,
        )


@contextlib.contextmanager
def metadata_database() -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL for cargobay, what it is) of a fresh PostgreSQL database, or SQLite."""
    import sqlalchemy as sa

    admin_url = "postgresql+psycopg://" + POSTGRES_URL.split("://", 1)[1]
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql("SELECT 1")
    except Exception as e:
        log(f"no PostgreSQL at {POSTGRES_URL} ({type(e).__name__}): cargobay uses SQLite")
        yield "sqlite", "SQLite (no PostgreSQL answered)"
        return
    name = f"cargobay_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, "PostgreSQL (a fresh database)"
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# -- the registries -----------------------------------------------------------------------------


@dataclass
class Registry:
    label: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path
    port: int
    credentials: tuple[str, str] | None = None  # for skopeo
    proc: subprocess.Popen[bytes] | None = None
    auth: Auth | None = None
    pids: set[int] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def conn(self) -> Conn:
        c = Conn("127.0.0.1", self.port, timeout=600)
        c.extra_headers = self.auth.headers() if self.auth else {}
        return c

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.label} exited at start:\n{tail}")
            with contextlib.suppress(OSError), Conn("127.0.0.1", self.port, timeout=5) as c:
                if c.request("GET", "/v2/").status in (200, 401):
                    break
            time.sleep(0.1)
        else:
            raise SystemExit(f"{self.label} did not answer within {timeout:.0f} s")
        self.pids = set(tree_pids(self.pid))
        if self.credentials:
            os.environ["CARGOBAY_BENCH_USER"], os.environ["CARGOBAY_BENCH_TOKEN"] = self.credentials
        self.auth = Auth("127.0.0.1", self.port, [REPO, "bench/image"]).discover()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.pids |= set(tree_pids(self.pid))
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for pid in self.pids - {self.pid}:
            with contextlib.suppress(OSError):
                if alive(pid) and os.getsid(pid) == self.pid:
                    os.kill(pid, signal.SIGKILL)
        self.proc = None


def cargobay(tmp: Path, s3: S3, bucket: str, database_url: str, workers: int) -> Registry:
    data = tmp / "cargobay-data"
    data.mkdir()
    key = tmp / "registry-token.key"
    key.write_text(secrets.token_bytes(32).hex())
    key.chmod(0o600)
    env = {
        **os.environ,
        "CARGOBAY_BLOB_STORE": "s3",
        "CARGOBAY_S3_ENDPOINT_URL": s3.endpoint,
        "CARGOBAY_S3_BUCKET": bucket,
        "CARGOBAY_S3_ACCESS_KEY_ID": s3.access_key,
        "CARGOBAY_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "CARGOBAY_BLOB_REDIRECT": "true",
        "CARGOBAY_DATABASE_URL": database_url,
        "CARGOBAY_TOKEN_KEY_FILE": str(key),
    }
    cli = [str(VENV_PYTHON), "-m", "cargobay"]
    where = ["--data-dir", str(data)]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args, *where], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"cargobay {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout.strip()

    run("migrate")
    run("user", "create", "bench")
    scopes = "read:packages,write:packages,delete:packages"
    token = run("token", "create", "--user", "bench", "--scopes", scopes, "--note", "bench")
    port = free_port()
    cmd = [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), *where]
    cmd += ["--workers", str(workers)]
    return Registry("cargobay", cmd, env, tmp / "cargobay.log", tmp, port, ("bench", token))


def reference(tmp: Path, s3: S3, bucket: str) -> Registry:
    port = free_port()
    config = tmp / "reference.yml"
    config.write_text(
        REFERENCE_CONFIG.format(
            endpoint=s3.endpoint,
            bucket=bucket,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            port=port,
        )
    )
    # The s3 driver (aws-sdk-go v1) refuses to start when AWS_CA_BUNDLE is set: "unable to load
    # custom CA bundle, HTTPClient's transport unsupported type" (registry/handlers/app.go:127).
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env["REGISTRY_HTTP_SECRET"] = secrets.token_hex(16)
    return Registry(
        "reference", [REFERENCE_BIN, "serve", str(config)], env, tmp / "reference.log", tmp, port
    )


# -- measurements -------------------------------------------------------------------------------

Sample = dict[str, float]


@dataclass
class Meter:
    """Wall time, the registry's CPU and the object store daemons' CPU around a block."""

    registry: int
    store: list[int]
    wall: float = 0.0
    cpu: float = 0.0
    store_cpu: float = 0.0

    def __enter__(self) -> Meter:
        self._inner = CpuMeter(self.registry).__enter__()
        self._store0 = sum(tree_cpu_seconds(p) for p in self.store)
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)
        self.wall, self.cpu = self._inner.wall, self._inner.cpu
        self.store_cpu = sum(tree_cpu_seconds(p) for p in self.store) - self._store0

    def sample(self, prefix: str, nbytes: int) -> Sample:
        gib = nbytes / (1 << 30)
        return {
            f"{prefix}.mibps": nbytes / MiB / self.wall,
            f"{prefix}.cpu_gib": self.cpu / gib,
            f"{prefix}.store_cpu_gib": self.store_cpu / gib,
        }


class Workloads:
    def __init__(self, s3: S3, args: argparse.Namespace, tmp: Path) -> None:
        self.s3 = s3
        self.args = args
        self.tmp = tmp
        self.size = args.size * MiB
        self.seed = int(time.time()) % 1_000_000 * 1000
        self.last_blob: dict[str, BlobData] = {}
        self.images: dict[str, str] = {}

    def blob(self) -> BlobData:
        self.seed += 1
        blob = BlobData(self.seed, self.size)
        _ = blob.digest  # hashed before the clock starts
        return blob

    def meter(self, registry: Registry) -> Meter:
        return Meter(registry.pid, self.s3.daemon_pids())

    def push_monolithic(self, registry: Registry) -> Sample:
        blob = self.blob()
        os.sync()
        with registry.conn() as c:
            c.request("GET", "/v2/")
            with self.meter(registry) as m:
                upload_put(c, REPO, blob)
        self.last_blob[registry.label] = blob
        return m.sample("push_put", blob.size)

    def push_chunked(self, registry: Registry) -> Sample:
        blob = self.blob()
        os.sync()
        with registry.conn() as c:
            c.request("GET", "/v2/")
            with self.meter(registry) as m:
                upload_chunked(c, REPO, blob, 8 * MiB)
        return m.sample("push_chunked", blob.size)

    def pull(self, registry: Registry) -> Sample:
        blob = self.last_blob[registry.label]
        target = f"/v2/{REPO}/blobs/{blob.digest}"
        with registry.conn() as c:
            r = c.request("GET", target, keep_body=False)
            expect(r, 307, what=f"{registry.label}: GET blob (a redirect to S3 expected)")
            with self.meter(registry) as m:
                got = download(c, target)
        if got != blob.size:
            raise RuntimeError(f"{registry.label}: pulled {got} bytes of {blob.size}")
        return m.sample("pull", got)

    def direct(self) -> Sample:
        """The object store alone: boto3 multipart PUT (8 MiB parts) and a GET of the blob."""
        from boto3.s3.transfer import TransferConfig

        client = self.s3.client()
        blob = self.blob()
        data = blob.to_bytes()
        config = TransferConfig(multipart_chunksize=8 * MiB, multipart_threshold=8 * MiB)
        key = f"direct/{blob.digest}"
        with Meter(os.getpid(), self.s3.daemon_pids()) as up:
            client.upload_fileobj(io.BytesIO(data), self.args.direct_bucket, key, Config=config)
        with Meter(os.getpid(), self.s3.daemon_pids()) as down:
            body = client.get_object(Bucket=self.args.direct_bucket, Key=key)["Body"]
            got = 0
            while chunk := body.read(8 * MiB):
                got += len(chunk)
        client.delete_object(Bucket=self.args.direct_bucket, Key=key)
        assert got == blob.size
        return {
            "direct_put.mibps": blob.size / MiB / up.wall,
            "direct_put.store_cpu_gib": up.store_cpu / (blob.size / (1 << 30)),
            "direct_get.mibps": blob.size / MiB / down.wall,
            "direct_get.store_cpu_gib": down.store_cpu / (blob.size / (1 << 30)),
        }

    # -- skopeo ---------------------------------------------------------------------------
    def layout(self, name: str) -> tuple[Path, int]:
        """An OCI layout of one image with --layers layers of --layer-size MiB of random bytes,
        each a gzip stream of stored (level 0) blocks: valid, new to every registry, and quick
        to make. Returns the layout and the bytes of its blobs."""
        root = self.tmp / "layouts" / name
        blobs_dir = root / "blobs" / "sha256"
        blobs_dir.mkdir(parents=True)
        layers, diff_ids, total = [], [], 0
        for i in range(self.args.layers):
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w") as tar:
                data = os.urandom(self.args.layer_size * MiB)
                info = tarfile.TarInfo(f"layer{i}.bin")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            tar_bytes = raw.getvalue()
            blob = gzip.compress(tar_bytes, compresslevel=0, mtime=0)
            digest = hashlib.sha256(blob).hexdigest()
            (blobs_dir / digest).write_bytes(blob)
            layers.append(
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{digest}",
                    "size": len(blob),
                }
            )
            diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
            total += len(blob)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                    "size": len(config),
                },
                "layers": layers,
            }
        ).encode()
        for data in (config, manifest):
            (blobs_dir / hashlib.sha256(data).hexdigest()).write_bytes(data)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": "bench"},
                }
            ],
        }
        (root / "index.json").write_text(json.dumps(index))
        return root, total + len(config) + len(manifest)

    def skopeo(self, *args: str) -> None:
        home = self.tmp / "skopeo-home"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home), "TMPDIR": str(home / "tmp")}
        done = subprocess.run(
            ["skopeo", "--insecure-policy", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"skopeo {' '.join(args)} failed:\n{done.stderr[-2000:]}")

    def skopeo_push(self, registry: Registry) -> Sample:
        self.seed += 1
        layout, nbytes = self.layout(f"{registry.label}-{self.seed}")
        tag = f"r{self.seed}"
        creds = ["--dest-creds", ":".join(registry.credentials)] if registry.credentials else []
        os.sync()
        with self.meter(registry) as m:
            self.skopeo(
                "copy",
                "--dest-tls-verify=false",
                *creds,
                f"oci:{layout}:bench",
                f"docker://{registry.address}/bench/image:{tag}",
            )
        shutil.rmtree(layout)
        self.images[registry.label] = tag
        return m.sample("skopeo_push", nbytes)

    def skopeo_pull(self, registry: Registry) -> Sample:
        tag = self.images[registry.label]
        target = self.tmp / f"pulled-{registry.label}-{tag}"
        creds = ["--src-creds", ":".join(registry.credentials)] if registry.credentials else []
        with self.meter(registry) as m:
            self.skopeo(
                "copy",
                "--src-tls-verify=false",
                *creds,
                f"docker://{registry.address}/bench/image:{tag}",
                f"dir:{target}",
            )
        nbytes = sum(p.stat().st_size for p in target.iterdir())
        shutil.rmtree(target)
        return m.sample("skopeo_pull", nbytes)


# -- report -------------------------------------------------------------------------------------

ROWS = [
    ("push_put", "monolithic push (POST + one PUT)"),
    ("push_chunked", "chunked push (8 MiB PATCHes)"),
    ("pull", "pull (GET, 307 to S3 followed)"),
    ("skopeo_push", "skopeo copy to the registry"),
    ("skopeo_pull", "skopeo copy from the registry"),
]


def median(samples: list[Sample], key: str) -> float | None:
    values = [s[key] for s in samples if key in s]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def render(results: dict[str, list[Sample]], direct: list[Sample], meta: dict[str, str]) -> str:
    lines = [
        "# bench --s3: cargobay vs Distribution 2.8, blobs in Ceph RGW",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        "",
        "Medians. MiB/s ↑; CPU-s/GiB ↓ (registry = its process tree; RGW = radosgw + ceph-osd).",
        "",
        "| workload | metric | cargobay | reference | cargobay/reference |",
        "|---|---|---:|---:|---:|",
    ]
    for prefix, title in ROWS:
        for metric, label in (
            ("mibps", "MiB/s ↑"),
            ("cpu_gib", "registry CPU-s/GiB ↓"),
            ("store_cpu_gib", "RGW CPU-s/GiB ↓"),
        ):
            key = f"{prefix}.{metric}"
            a, b = median(results["cargobay"], key), median(results["reference"], key)
            ratio = f"{a / b:.2f}x" if a is not None and b else "n/a"
            digits = 1 if metric == "mibps" else 2
            lines.append(f"| {title} | {label} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio} |")
    if direct:
        lines += [
            "",
            "The object store alone (boto3, 8 MiB multipart parts, same blob size): "
            f"PUT {fmt(median(direct, 'direct_put.mibps'))} MiB/s, "
            f"GET {fmt(median(direct, 'direct_get.mibps'))} MiB/s; "
            f"RGW CPU-s/GiB PUT {fmt(median(direct, 'direct_put.store_cpu_gib'), 2)}, "
            f"GET {fmt(median(direct, 'direct_get.store_cpu_gib'), 2)}.",
        ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def alternate(
    name: str,
    registries: list[Registry],
    reps: int,
    fn: Callable[[Registry], Sample],
    results: dict[str, list[Sample]],
) -> None:
    for rep in range(reps):
        order = registries if rep % 2 == 0 else list(reversed(registries))
        for registry in order:
            sample = fn(registry)
            results[registry.label].append(sample)
            shown = ", ".join(f"{k.split('.', 1)[1]}={v:.2f}" for k, v in sample.items())
            log(f"{name} #{rep + 1} {registry.label}: {shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB blobs, 2 reps, 2 layers")
    parser.add_argument("--size", type=int, help="blob size in MiB (default 512)")
    parser.add_argument("--reps", type=int, help="repetitions per workload (default 3)")
    parser.add_argument("--layers", type=int, help="layers of the skopeo image (default 4)")
    parser.add_argument("--layer-size", type=int, default=64, help="MiB per layer (64)")
    parser.add_argument("--workers", type=int, default=1, help="cargobay worker processes")
    parser.add_argument("--output", help="write the Markdown report here")
    parser.add_argument("--json", help="write the raw samples here")
    parser.add_argument("--data-root", help="where the temporary directory goes")
    args = parser.parse_args(argv)
    args.size = args.size or (256 if args.quick else 512)
    args.reps = args.reps or (2 if args.quick else 3)
    args.layers = args.layers or (2 if args.quick else 4)
    if shutil.which(REFERENCE_BIN) is None or shutil.which("skopeo") is None:
        raise SystemExit("needs Debian's docker-registry and skopeo")

    tmp = Path(tempfile.mkdtemp(prefix="cargobay-bench-s3-", dir=args.data_root))
    registries: list[Registry] = []
    buckets: list[str] = []
    try:
        with object_store(tmp) as s3, metadata_database() as (database_url, database):
            log(f"S3 at {s3.endpoint}; cargobay metadata: {database}")
            client = s3.client()
            suffix = secrets.token_hex(4)
            names = {k: f"bench-{k}-{suffix}" for k in ("cargobay", "reference", "direct")}
            for bucket in names.values():
                client.create_bucket(Bucket=bucket)
                buckets.append(bucket)
            args.direct_bucket = names["direct"]
            registries = [
                cargobay(tmp, s3, names["cargobay"], database_url, args.workers),
                reference(tmp, s3, names["reference"]),
            ]
            for registry in registries:
                registry.start()
                log(f"started {registry.label} on {registry.address} (pid {registry.pid})")
            work = Workloads(s3, args, tmp)
            results: dict[str, list[Sample]] = {r.label: [] for r in registries}
            direct: list[Sample] = []
            for rep in range(args.reps):
                sample = work.direct()
                direct.append(sample)
                log(
                    f"S3 direct #{rep + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in sample.items())
                )
            alternate("monolithic push", registries, args.reps, work.push_monolithic, results)
            alternate("pull", registries, args.reps, work.pull, results)
            alternate("chunked push", registries, args.reps, work.push_chunked, results)
            alternate("skopeo push", registries, args.reps, work.skopeo_push, results)
            alternate("skopeo pull", registries, args.reps, work.skopeo_pull, results)
            versions = subprocess.run(
                [REFERENCE_BIN, "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            meta = {
                "machine": ", ".join(f"{k} {v}" for k, v in machine().items()),
                "object store": f"Ceph RGW {s3.endpoint} (one node, one bluestore OSD)",
                "cargobay": f"{args.workers} worker(s), metadata in {database}, redirects on",
                "reference": f"{versions}, s3 driver, chunksize 8 MiB, redirects on",
                "sizes": (
                    f"{args.size} MiB blobs; skopeo image of {args.layers} x "
                    f"{args.layer_size} MiB layers; {args.reps} reps, alternating"
                ),
            }
            text = render(results, direct, meta)
            print("\n" + text)
            if args.output:
                Path(args.output).write_text(text)
            if args.json:
                Path(args.json).write_text(
                    json.dumps({"results": results, "direct": direct, "meta": meta}, indent=1)
                )
            for registry in registries:
                registry.stop()
            for bucket in buckets:
                s3.remove_bucket(bucket)
    finally:
        for registry in registries:
            registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
