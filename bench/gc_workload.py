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

import json
import os
import subprocess
import threading
import time
import uuid
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
HERE = Path(__file__).resolve().parent
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
        for rep in range(max(cfg.push_reps, 3)):
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


def _collect(database_url: str, root: Path) -> dict[str, float]:
    """One measurement in a process of its own: cargobay's imports must not see the bench's
    modules (``bench/limits.py`` would shadow the ``limits`` package)."""
    done = subprocess.run(
        [str(VENV_PYTHON), "-P", str(HERE / "gc_time.py"), database_url, str(root), str(BLOBS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-500:])
    sample: dict[str, float] = json.loads(done.stdout)
    return sample


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
    ]
    for metric, what in (
        ("gc.seconds_per_10k", "seconds per 10,000 blobs, both runs ↓"),
        ("gc.discover_per_10k", "first run (finds them) ↓"),
        ("gc.remove_per_10k", "second run (re-checks and removes them) ↓"),
    ):
        lines.append(
            f"| {what} | {fmt(res.median('gc-sqlite', metric))} |"
            f" {fmt(res.median('gc-postgres', metric))} |"
        )
    return "\n".join(lines), verdicts
