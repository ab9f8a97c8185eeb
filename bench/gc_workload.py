"""What online garbage collection costs (group ``gc``; cargobay only, the reference has no
online collector):

1. push throughput with ``cargobay gc --grace 0s`` running in a loop beside it (on the server's
   CPU, as a scheduled collection would) against the same server without it: 50 concurrent
   pushes (workload 8), alternating without / with. Floor: with GC ≥ 0.9x without.
2. the time one collection takes per 10,000 blobs, on SQLite and on PostgreSQL (filesystem
   blobs on both): 10,000 garbage blobs (bytes on disk, rows past the grace period) among
   10,000 live ones linked by a package, seeded through the metadata layer; one
   ``GcService.run_once`` with no grace period must remove exactly the garbage.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
import workloads as wl
from report import Results, _x, fmt
from servers import VENV_PYTHON

if TYPE_CHECKING:
    from harness import Bench

PUSH, PUSH_GC = "cargobay-push", "cargobay-push+gc"
FLOOR = 0.9
BLOBS = 10_000
POSTGRES_URL = os.environ.get(
    "CARGOBAY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


class GcLoop:
    """``cargobay gc --grace 0s`` on a server's data directory, again and again, until stopped."""

    def __init__(self, data_dir: Path, cpus: str) -> None:
        self.command = ["taskset", "-c", cpus, str(VENV_PYTHON), "-m", "cargobay", "gc"]
        self.command += ["--grace", "0s", "--json", "--data-dir", str(data_dir)]
        self.runs = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gc-loop", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            done = subprocess.run(self.command, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                self.runs += 1
            else:
                self.failures.append(done.stderr.strip()[-300:])

    def __enter__(self) -> GcLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def push_ratio(bench: Bench) -> None:
    cfg = bench.cfg
    server = bench.make_server("cargobay-gc", "cargobay", "0", bench.args.workers)
    if not bench.start(server):
        return
    runs = 0
    try:
        for rep in range(cfg.push_reps):
            for label in (PUSH, PUSH_GC):
                if label == PUSH:
                    sample = wl.concurrent_pushes(server, 50)
                else:
                    with GcLoop(server.data_dir, server.cpus) as loop:
                        time.sleep(0.5)  # the first collection is under way
                        sample = wl.concurrent_pushes(server, 50)
                    runs += loop.runs
                    if loop.failures:
                        bench.res.note(label, f"gc failed: {loop.failures[0]}")
                total = float(sample["push.total_s"])
                out = {**sample, "push.per_s": 50 / total}
                bench.res.add(label, out)
                print(f"[bench] gc-push {label:17} rep {rep + 1}: {50 / total:.1f} pushes/s")
    finally:
        server.stop()
    bench.res.note(PUSH_GC, f"{runs} collections ran beside the pushes")


def _seed(metadata: object, root: Path, garbage: int, live: int) -> None:
    """``live`` blobs linked by package ``bench/live`` and ``garbage`` blobs nothing references,
    uploaded a day ago: rows through the metadata layer, 64 bytes each on disk."""
    from cargobay.metadata.schema import blob_links, blobs, repositories

    engine: sa.Engine = metadata.engine  # type: ignore[attr-defined]
    old = datetime.now(UTC) - timedelta(days=1)
    rows, links = [], []
    with engine.begin() as c:
        package = c.execute(
            sa.insert(repositories)
            .values(name="bench/live", created_at=old)
            .returning(repositories.c.id)
        ).scalar_one()
        for i in range(garbage + live):
            data = f"blob {i} {uuid.uuid4()}".encode().ljust(64, b".")
            encoded = hashlib.sha256(data).hexdigest()
            digest = f"sha256:{encoded}"
            path = root / "blobs" / "sha256" / encoded[:2] / encoded
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            rows.append(
                {
                    "digest": digest,
                    "size": 64,
                    "state": "live",
                    "touched_at": old,
                    "created_at": old,
                }
            )
            if i >= garbage:
                links.append(
                    {"repository_id": package, "digest": digest, "size": 64, "created_at": old}
                )
        c.execute(sa.insert(blobs), rows)
        c.execute(sa.insert(blob_links), links)


def _collect(database_url: str, root: Path) -> dict[str, float]:
    from cargobay.app import build_blob_store, build_gc, build_metadata, build_registry
    from cargobay.metadata.engine import make_engine, migrate
    from cargobay.settings import Settings

    settings = Settings(data_dir=root, database_url=database_url)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    engine.dispose()
    metadata = build_metadata(settings)
    try:
        store = build_blob_store(settings)
        _seed(metadata, root, BLOBS, BLOBS)
        service = build_gc(settings, metadata, store, build_registry(settings, metadata, store))
        started = time.perf_counter()
        report = asyncio.run(service.run_once(grace=0))
        seconds = time.perf_counter() - started
    finally:
        metadata.close()
    if report.blobs_deleted + report.orphans_deleted != BLOBS:
        raise RuntimeError(f"removed {report.blobs_deleted} blobs, not {BLOBS}: {report}")
    return {"gc.seconds_per_10k": seconds * 10_000 / BLOBS, "gc.checked": report.blobs_checked}


def gc_time(bench: Bench) -> None:
    sqlite_root = bench.tmp / "gc-sqlite"
    sample = _collect("", sqlite_root)
    bench.res.add("gc-sqlite", sample)
    print(f"[bench] gc sqlite: {sample['gc.seconds_per_10k']:.2f} s per 10,000 blobs")
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"cargobay_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        bench.res.error("gc-postgres", "gc", f"PostgreSQL not reachable: {exc}")
        admin.dispose()
        return
    try:
        url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        sample = _collect(url, bench.tmp / "gc-postgres")
        bench.res.add("gc-postgres", sample)
        print(f"[bench] gc postgres: {sample['gc.seconds_per_10k']:.2f} s per 10,000 blobs")
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_gc(bench: Bench) -> None:
    push_ratio(bench)
    try:
        gc_time(bench)
    except Exception as exc:
        bench.res.error("gc-sqlite", "gc", f"{type(exc).__name__}: {exc}")


def table(res: Results) -> tuple[str, list[tuple[str, str, str]]]:
    plain, busy = res.median(PUSH, "push.per_s"), res.median(PUSH_GC, "push.per_s")
    verdicts = []
    if plain and busy is not None:
        ok = busy / plain >= FLOOR
        verdict = f"{'PASS' if ok else 'FAIL'} ({_x(busy / plain, FLOOR)} ≥ {FLOOR}x)"
    else:
        verdict = "SKIP"
    verdicts.append(("pushes beside a GC loop", verdict.split(" ")[0], verdict))
    ratio = f"{busy / plain:.2f}x" if plain and busy is not None else "—"
    lines = [
        "| workload | metric | without GC | with GC in a loop | ratio | floor | check |",
        "|---|---|---:|---:|---:|---|---|",
        f"| 50 concurrent pushes | pushes/s ↑ | {fmt(plain)} | {fmt(busy)} | {ratio} |"
        f" ≥{FLOOR}x | {verdict} |",
        "",
        "| GC of 10,000 garbage blobs among 10,000 live | SQLite | PostgreSQL |",
        "|---|---:|---:|",
        f"| seconds per 10,000 blobs ↓ | {fmt(res.median('gc-sqlite', 'gc.seconds_per_10k'))} |"
        f" {fmt(res.median('gc-postgres', 'gc.seconds_per_10k'))} |",
    ]
    return "\n".join(lines), verdicts
