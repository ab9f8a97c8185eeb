"""cargobay vs the reference registry, side by side. Entry point: bench/run.

    bench/run [--quick] [--workers-too] [--tls] [--reps N] [--only GROUPS] [--output FILE]
              [--json FILE] [--profile] [--data-root DIR]

Servers run pinned to CPU 0, the load generators (wrk, ab, this process) to CPU 1.
Every workload alternates the servers (A, B, A, B, ...) and reports medians.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gc_workload
import limits
import loadgen
import ops_workload
import profiling
import report
import tls as bench_tls
import workloads as wl
from httpc import MiB, _base
from procs import CLK_TCK, tree_pids, tree_pss_bytes, tree_rss_bytes
from report import Results, Sample
from servers import VENV_PYTHON, Server, machine, versions

HERE = Path(__file__).resolve().parent
GROUPS = [
    "limits",
    "upload_put",
    "upload_chunked",
    "get_whole",
    "get_range",
    "manifest_get",
    "manifest_head",
    "v2",
    "token",
    "tags",
    "push",
    "rss_small",
    "rss_big",
    "tls",
    "gc",
    "ops",
]
WORKER_GROUPS = GROUPS[1:8]


@dataclass
class Config:
    quick: bool
    blob_size: int = 256 * MiB
    get_total: int = 1024 * MiB  # bytes read per blob GET sample (repeated GETs)
    blob_reps: int = 5
    upload_reps: int = 5
    rate_reps: int = 3
    rate_dur: float = 10.0
    tags: int = 10_000
    walk_reps: int = 5
    push_reps: int = 3
    rss_big: int = 4096 * MiB
    rss_counts: tuple[int, int] = (1_000, 100_000)
    limit_reps: int = 3
    sha_total: int = 1024 * MiB
    loop_total: int = 2048 * MiB
    worker_reps: int = 3
    rss_small_reference: bool = True

    @classmethod
    def make(cls, quick: bool, reps: int | None) -> Config:
        if quick:
            c = cls(
                quick=True,
                blob_reps=3,
                upload_reps=2,
                get_total=512 * MiB,
                rate_reps=2,
                rate_dur=3.0,
                tags=1_000,
                walk_reps=3,
                push_reps=1,
                rss_big=500 * MiB,
                rss_counts=(1_000, 10_000),
                limit_reps=2,
                sha_total=256 * MiB,
                loop_total=512 * MiB,
                worker_reps=1,
                rss_small_reference=False,
            )
        else:
            c = cls(quick=False)
        if reps:
            c.blob_reps = c.upload_reps = c.rate_reps = c.walk_reps = reps
            c.push_reps = c.worker_reps = reps
        return c

    def labels(self) -> dict[str, str]:
        big = self.rss_big
        gib = 1024 * MiB
        return {
            "tags": f"{self.tags:,}",
            "rss_big": f"{big // gib} GiB" if big % gib == 0 else f"{big // MiB} MiB",
            "rss_a": f"{self.rss_counts[0]:,}",
            "rss_b": f"{self.rss_counts[1]:,}",
        }


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


T0 = time.perf_counter()


def describe(sample: Sample) -> str:
    return ", ".join(
        f"{k.split('.', 1)[1]}={report.fmt(v) if isinstance(v, float | int) else v}"
        for k, v in sample.items()
    )


def pin_self(cpus: set[int]) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, cpus & set(range(os.cpu_count() or 1)))


class Bench:
    def __init__(self, cfg: Config, tmp: Path, args: argparse.Namespace) -> None:
        self.cfg = cfg
        self.tmp = tmp
        self.args = args
        self.res = Results()
        self.skipped: dict[str, str] = {}
        self.servers: list[Server] = []
        self.fixtures: dict[str, wl.Fixture] = {}
        self.only = set(args.only.split(",")) if args.only else set(GROUPS)
        self.load_cpus = "1"
        self.profile: list[str] = []
        self.workers_ran = False
        self.tls_ran = False
        self.gc_ran = False
        self.ops_ran = False
        self.background = ""

    # -- servers ------------------------------------------------------------------
    def make_server(self, label: str, kind: str, cpus: str, workers: int | None) -> Server:
        s = Server(
            label, kind, cpus, workers, self.tmp / f"{label}-data", self.tmp / f"{label}.log"
        )
        self.servers.append(s)
        return s

    def start(self, s: Server) -> bool:
        try:
            s.start()
        except Exception as e:  # a server that cannot start is skipped, not fatal
            msg = str(e).strip()
            if s.kind == "cargobay":
                msg = f"cargobay server failed to start: {msg}"
            self.skipped[s.label] = msg
            log(f"SKIP {s.label}: {msg}")
            return False
        auth = "bearer token" if s.auth and s.auth.enabled else "no auth"
        n = len(tree_pids(s.pid))
        rss, pss = tree_rss_bytes(s.pid) / 1e6, tree_pss_bytes(s.pid) / 1e6
        log(
            f"started {s.label} pid {s.pid} port {s.port} cpus {s.cpus} ({auth}); "
            f"{n} process(es), RSS {rss:.0f} MB, PSS {pss:.0f} MB"
        )
        return True

    def ensure_running(self, s: Server, group: str) -> bool:
        if s.running():
            return True
        code = s.proc.returncode if s.proc else None
        self.res.note(s.label, f"{group}: server exited (code {code}); restarted\n{s.log_tail(8)}")
        log(f"{s.label} died (code {code}); restarting")
        s.stop()
        return self.start(s)

    def active(self, servers: list[Server]) -> list[Server]:
        return [s for s in servers if s.label not in self.skipped]

    # -- running workloads ------------------------------------------------------------
    def alternate(
        self,
        group: str,
        servers: list[Server],
        reps: int,
        fn: Callable[[Server], Sample],
        before: Callable[[], None] | None = None,
    ) -> None:
        if group not in self.only:
            return
        for rep in range(reps):
            for s in self.active(servers):
                if group in self.res.errors.get(s.label, {}):
                    continue
                if not self.ensure_running(s, group):
                    continue
                if before:
                    before()
                try:
                    sample = fn(s)
                except Exception as e:
                    msg = f"{type(e).__name__}: {e}"
                    if not s.running():
                        msg += f" (server exited; log: {s.log_tail(5)})"
                    self.res.error(s.label, group, msg)
                    log(f"{group:15} {s.label:12} rep {rep + 1}/{reps}: ERROR {msg}")
                    continue
                self.res.add(s.label, sample)
                if sample:
                    log(f"{group:15} {s.label:12} rep {rep + 1}/{reps}: {describe(sample)}")

    # -- phases -------------------------------------------------------------------------
    def run_limits(self) -> None:
        if "limits" not in self.only:
            return
        cfg, lim = self.cfg, self.res.limits
        n = cfg.limit_reps
        lim["sha256"] = statistics.median(limits.sha256_mibps(cfg.sha_total) for _ in range(n))
        log(f"limit sha256 {lim['sha256']:.0f} MiB/s")
        lim["disk"] = statistics.median(limits.disk_mibps(self.tmp) for _ in range(n))
        log(f"limit disk write+fsync {lim['disk']:.0f} MiB/s")
        with limits.null_server("raw", "0") as port:
            lim["loopback"] = statistics.median(
                limits.loopback_mibps(port, cfg.loop_total) for _ in range(n)
            )
        log(f"limit loopback {lim['loopback']:.0f} MiB/s")
        lim["upload_limit"] = limits.series_limit(lim["sha256"], lim["loopback"], lim["disk"])
        log(f"single-core upload limit {lim['upload_limit']:.0f} MiB/s")
        with limits.null_server("http", "0") as port:
            lim["client_upload"] = statistics.median(
                limits.client_upload_mibps(port, cfg.blob_size) for _ in range(n)
            )
            lim["client_download"] = statistics.median(
                limits.client_download_mibps(port, cfg.blob_size) for _ in range(n)
            )
        log(
            f"client check: upload {lim['client_upload']:.0f} MiB/s, "
            f"download {lim['client_download']:.0f} MiB/s (against null servers)"
        )

    def setup(self, s: Server, tags: bool = True) -> None:
        """Untimed: a small image for the manifest workloads, the tags for the walk. The
        blob GET workloads read the last blob of the upload workload."""
        fx = self.fixtures.setdefault(s.label, wl.Fixture())
        steps: list[tuple[list[str], Callable[[], object]]] = [
            (["manifest_get", "manifest_head", "rss_small"], lambda: wl.setup_manifest(s, fx)),
        ]
        if tags and "tags" in self.only:
            steps.append(
                (["tags"], lambda: self.res.add(s.label, wl.setup_tags(s, fx, self.cfg.tags)))
            )
        for groups, step in steps:
            if not any(g in self.only for g in groups):
                continue
            t = time.perf_counter()
            try:
                step()
            except Exception as e:
                for g in groups:
                    self.res.error(s.label, g, f"setup failed: {type(e).__name__}: {e}")
                log(f"setup {s.label} for {groups}: ERROR {type(e).__name__}: {e}")
                continue
            log(f"setup {s.label} for {'/'.join(groups)} in {time.perf_counter() - t:.1f}s")

    def workloads_1_to_5(
        self, live: list[Server], upload_reps: int, blob_reps: int, rate_reps: int, lc: str
    ) -> None:
        cfg, fx = self.cfg, self.fixtures
        size, dur = cfg.blob_size, cfg.rate_dur
        half = f"bytes=0-{size // 2 - 1}"

        def get(rng: str | None) -> Callable[[Server], Sample]:
            return lambda s: wl.blob_get(s, fx[s.label], rng, size, cfg.get_total)

        def mono(s: Server) -> Sample:
            return wl.upload_monolithic(s, fx[s.label], size)

        def chunked(s: Server) -> Sample:
            return {**wl.upload_in_chunks(s, size), **wl.patch_cost(s)}

        self.alternate("upload_put", live, upload_reps, mono, before=os.sync)
        self.alternate("upload_chunked", live, upload_reps, chunked, before=os.sync)
        self.alternate("get_whole", live, blob_reps, get(None))
        self.alternate("get_range", live, blob_reps, get(half))
        self.alternate("manifest_get", live, rate_reps, lambda s: wl.manifest_get(s, dur, lc))
        self.alternate("manifest_head", live, rate_reps, lambda s: wl.manifest_head(s, dur, lc))
        self.alternate("v2", live, rate_reps, lambda s: wl.base_get(s, dur, lc))

    def run_main(self) -> None:
        cfg = self.cfg
        if not self.only - {"limits", "tls", "gc", "ops"}:
            return
        servers = [
            self.make_server("cargobay", "cargobay", "0", self.args.workers),
            self.make_server("reference", "reference", "0", None),
        ]
        for s in servers:
            self.fixtures[s.label] = wl.Fixture()
            if self.start(s):
                self.setup(s)
        live = self.active(servers)
        if not live:
            return
        dur, lc, fx = cfg.rate_dur, self.load_cpus, self.fixtures
        self.workloads_1_to_5(live, cfg.upload_reps, cfg.blob_reps, cfg.rate_reps, lc)
        self.alternate("token", live, cfg.rate_reps, lambda s: wl.token_issue(s, dur, lc))
        self.alternate("tags", live, cfg.walk_reps, lambda s: wl.walk_tags(s, fx[s.label]))
        self.alternate("push", live, cfg.push_reps, lambda s: wl.concurrent_pushes(s, 50))
        if self.args.profile:
            cb = [s for s in live if s.kind == "cargobay" and s.running()]
            if cb:
                self.run_profiles(cb[0])
        # memory, each on a freshly started server (same data directory)
        for s in self.active(servers):
            if not ({"rss_small", "rss_big"} & self.only):
                break
            s.stop()
            if not self.start(s):
                continue
            if s.kind == "cargobay" or cfg.rss_small_reference:
                self.alternate(
                    "rss_small", [s], 1, lambda s: wl.rss_small_requests(s, cfg.rss_counts, lc)
                )
            else:
                self.res.error(s.label, "rss_small", "not run in quick mode (too slow)")
            self.alternate(
                "rss_big", [s], 1, lambda s: wl.rss_big_blob(s, cfg.rss_big), before=os.sync
            )
        for s in servers:
            s.stop()

    def run_workers(self) -> None:
        """cargobay --workers 1 vs --workers 2 on workloads 1-5. Both servers and the load
        generator share both cores here (a 2-worker server pinned to one core cannot scale)."""
        cfg = self.cfg
        servers = [
            self.make_server("cargobay-w1", "cargobay", "0,1", 1),
            self.make_server("cargobay-w2", "cargobay", "0,1", 2),
        ]
        self.workers_ran = True
        if "cargobay" in self.skipped:
            for s in servers:
                self.skipped[s.label] = self.skipped["cargobay"]
            return
        for s in servers:
            self.fixtures[s.label] = wl.Fixture()
            if self.start(s):
                self.setup(s, tags=False)
        live = self.active(servers)
        pin_self({0, 1})
        n = cfg.worker_reps
        try:
            self.workloads_1_to_5(live, n, n, n, "0,1")
        finally:
            pin_self({1})
            for s in servers:
                s.stop()

    def run_profiles(self, s: Server) -> None:
        """py-spy, then perf, each during an extra manifest GET run that is not counted."""
        dur = max(3, round(self.cfg.rate_dur))

        def load() -> object:
            return wl.manifest_get(s, dur, self.load_cpus)

        log(f"py-spy on {s.label} during manifest GET ({dur}s, not counted)")
        spy = profiling.py_spy(VENV_PYTHON.parent / "py-spy", s.pid, dur, self.tmp / "spy", load)
        log(f"perf on {s.label} during manifest GET ({dur}s, not counted)")
        pids = tree_pids(s.pid)
        perf = profiling.perf(pids, dur, self.tmp / "perf.data", load)
        self.profile = [*spy, "", *perf]

    # -- report -------------------------------------------------------------------------
    def markdown(self, started: str, elapsed: float) -> tuple[str, list[tuple[str, str, str]]]:
        cfg = self.cfg
        mach, vers = machine(), versions()
        table, verdicts = report.table(self.res, cfg.labels(), skipped=self.skipped)
        mode = "quick" if cfg.quick else "full"
        out = [
            "# cargobay vs reference registry",
            "",
            "Command: `" + " ".join(["bench/run", *sys.argv[1:]]) + "`",
            f"Mode: {mode}; {elapsed:.0f} s. Date: {started}.",
            f"Background: {self.background}.",
            f"Machine: {mach['nproc']} CPUs, {mach['cpu']}, kernel {mach['kernel']}, "
            f"{mach['memory']} RAM.",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
            "",
            "Servers pinned to CPU 0 (`taskset -c 0`), load generators and the Python clients to "
            "CPU 1. Medians of alternating repetitions: blob workloads "
            f"{cfg.blob_reps}x, request-rate workloads {cfg.rate_reps}x {cfg.rate_dur:.0f} s, "
            f"tag walks {cfg.walk_reps}x, pushes {cfg.push_reps}x. "
            "Ratios are cargobay/reference; ↑ higher is better, ↓ lower is better. "
            "CPU-s/GiB is user+system time of the server's whole process tree. MB = 10^6 bytes.",
            "",
            "## Physical limits (same run)",
            "",
            report.limits_table(self.res),
            "",
            "## cargobay vs reference",
            "",
            table,
        ]
        if self.tls_ran:
            tt, tv = bench_tls.table(self.res)
            verdicts += tv
            out += [
                "",
                "## HTTPS vs HTTP (blob GET)",
                "",
                "The same cargobay over TLS (`serve --tls-cert`, a certificate from `cargobay tls"
                " init`) and over plain HTTP, both pinned to CPU 0, alternating.",
                "",
                tt,
            ]
        if self.gc_ran:
            gt, gv = gc_workload.table(self.res)
            verdicts += gv
            out += [
                "",
                "## Online garbage collection (cargobay)",
                "",
                "50 concurrent pushes to one cargobay (CPU 0) with `cargobay gc --grace 0s` run"
                " in a loop on the same CPU, against the same server without it, alternating;"
                " and one collection of 10,000 garbage blobs among 10,000 live ones, seeded"
                " through the metadata layer (filesystem blobs).",
                "",
                gt,
            ]
        if self.ops_ran:
            ot, ov = ops_workload.table(self.res)
            verdicts += ov
            out += [
                "",
                "## Operations features on vs off (cargobay)",
                "",
                "Two cargobay servers on CPU 0, alternating: one with Prometheus metrics"
                " (`--metrics-port`), the audit log and two site-wide webhooks (every event,"
                " signed) delivering to a receiver in the bench process; one without metrics or"
                " webhooks (events are written to the outbox on both: the audit log has no switch)."
                " See `bench/ops_workload.py`.",
                "",
                ot,
            ]
        if self.workers_ran:
            wt, wv = report.workers_table(self.res, "cargobay-w1", "cargobay-w2")
            verdicts += wv
            out += [
                "",
                "## cargobay --workers 2 vs --workers 1",
                "",
                "Both servers and the load generator share both CPUs here (a two-worker server "
                f"pinned to one core cannot scale); {cfg.worker_reps} alternating "
                "repetition(s) each.",
                "",
                wt,
            ]
        counts = collections.Counter(v for _, v, _ in verdicts)
        out += [
            "",
            f"## Floors: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP",
            "",
        ]
        out += [f"- {name}: {detail}" for name, _, detail in verdicts]
        problems = []
        for label, why in self.skipped.items():
            problems.append(f"- **{label} skipped**: {why.splitlines()[0]}")
        for label, errs in self.res.errors.items():
            for group, msg in errs.items():
                problems.append(f"- {label} / {group}: {msg[:300]}")
        for label, notes in self.res.notes.items():
            for msg in notes[:10]:
                problems.append(f"- {label}: {msg.splitlines()[0][:300]}")
        if problems:
            out += ["", "## Errors and notes", "", *problems]
        if self.profile:
            out += ["", "## Profile: cargobay during manifest GET", "", "```", *self.profile, "```"]
        out.append("")
        return "\n".join(out), verdicts


class LoadMeter:
    """CPU time the rest of the machine used while we ran: all busy time from /proc/stat
    minus this process and every child it reaped (servers, wrk, ab, null servers)."""

    def __init__(self) -> None:
        self.busy0, self.ours0, self.t0 = self._busy(), self._ours(), time.perf_counter()

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
        return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK

    @staticmethod
    def _ours() -> float:
        me, kids = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def summary(self) -> str:
        wall = time.perf_counter() - self.t0
        other = max(0.0, (self._busy() - self.busy0) - (self._ours() - self.ours0))
        cores = os.cpu_count() or 1
        return (
            f"other processes on this machine used {other:.0f} CPU-s during the run "
            f"({other / (wall * cores):.0%} of {cores} cores); load average at the end "
            f"{os.getloadavg()[0]:.2f}"
        )


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="short run (< 3 min), smaller sizes")
    p.add_argument(
        "--workers-too", action="store_true", help="also cargobay --workers 2 vs 1 on workloads 1-5"
    )
    p.add_argument(
        "--tls", action="store_true", help="also blob GET over HTTPS vs plain HTTP (cargobay)"
    )
    p.add_argument(
        "--gc", action="store_true", help="also push throughput beside a GC loop, and GC time"
    )
    p.add_argument(
        "--ops",
        action="store_true",
        help="also pushes and manifest GETs with metrics, audit and 2 webhooks on vs off",
    )
    p.add_argument("--reps", type=int, help="repetitions per workload (override)")
    p.add_argument("--only", help=f"comma-separated groups: {','.join(GROUPS)}")
    p.add_argument("--workers", type=int, help="pass --workers N to the main cargobay server")
    p.add_argument(
        "--output",
        type=Path,
        help="write the Markdown report here (full mode default: bench/RESULTS.md)",
    )
    p.add_argument("--json", type=Path, help="write raw samples as JSON here")
    p.add_argument(
        "--profile",
        "--py-spy",
        dest="profile",
        action="store_true",
        help="profile cargobay (py-spy, perf) during an extra manifest GET run",
    )
    p.add_argument("--data-root", type=Path, help="where the temp data dirs go (default $TMPDIR)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    missing = [t for t, ok in loadgen.tools_present().items() if not ok]
    if missing:
        print(f"missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    cfg = Config.make(args.quick, args.reps)
    pin_self({1})
    _base()  # shared random buffer, made once before any thread uses it
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tmp = Path(tempfile.mkdtemp(prefix="cargobay-bench-", dir=args.data_root))
    bench = Bench(cfg, tmp, args)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    t = time.perf_counter()
    meter = LoadMeter()
    interrupted = False
    try:
        log(f"mode {'quick' if cfg.quick else 'full'}; temp dir {tmp}")
        bench.run_limits()
        bench.run_main()
        if args.workers_too:
            bench.run_workers()
        if "gc" in bench.only and (args.gc or args.only):
            bench.gc_ran = True
            gc_workload.run_gc(bench)
        if "ops" in bench.only and (args.ops or args.only):
            bench.ops_ran = True
            ops_workload.run_ops(bench)
        if "tls" in bench.only and (args.tls or args.only):
            bench.tls_ran = True
            bench_tls.run_tls(bench)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers and removing the temp dir")
        interrupted = True
    finally:
        for s in bench.servers:
            try:
                s.stop()
            except Exception as e:
                print(f"stopping {s.label}: {e}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        leftover = [th.name for th in threading.enumerate() if th is not threading.main_thread()]
        if leftover:
            log(f"threads still alive: {leftover}")
    if interrupted:
        return 130
    bench.background = meter.summary()
    log(bench.background)
    text, _verdicts = bench.markdown(started, time.perf_counter() - t)
    print()
    print(text)
    output = args.output or (None if cfg.quick else HERE / "RESULTS.md")
    if output:
        output.write_text(text)
        log(f"wrote {output}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "samples": bench.res.samples,
                    "errors": bench.res.errors,
                    "notes": bench.res.notes,
                    "limits": bench.res.limits,
                    "skipped": bench.skipped,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
