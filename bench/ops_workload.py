"""What the operations features cost (group ``ops``; cargobay only): two cargobay servers side by
side, both on CPU 0, in the same run:

- ``ops on``: Prometheus metrics (``--metrics-port``), the audit log, and two webhooks (every
  event, signed) delivering to a receiver in the bench process, allow-listed;
- ``ops off``: no metrics listener, no webhooks.

The audit log has no switch: every change writes its event to the outbox in its own
transaction on both servers (that row is what the audit log, the webhooks and the metrics
read), so "off" measures the registry without anyone consuming those events.

Workloads, alternating off / on (at least 3 repetitions): 50 concurrent pushes (workload 8),
then manifest GET by tag (wrk, workload 4). Webhook deliveries go out after the pushes they
follow (they never hold a push up); the bench waits until the receiver got no delivery for 2 s
before the GETs, so those measure metrics and request handling, not the delivery backlog
(how long that took is reported). Floor: on ≥ 0.95x off on both.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import workloads as wl
from report import Results, _x, fmt
from servers import VENV_PYTHON, Server, free_port

if TYPE_CHECKING:
    from harness import Bench

OFF, ON = "cargobay-ops-off", "cargobay-ops-on"
FLOOR = 0.95
PUSHES = 50


class NullReceiver:
    """A webhook receiver on 127.0.0.1 that answers 204 and counts what it got."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.count += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def settle(self, quiet: float = 2.0, longest: float = 180.0) -> float:
        """Wait until no delivery arrived for ``quiet`` seconds; returns the seconds waited."""
        started = time.monotonic()
        last, seen = started, self.count
        while time.monotonic() - started < longest:
            time.sleep(0.2)
            if self.count != seen:
                last, seen = time.monotonic(), self.count
            elif time.monotonic() - last >= quiet:
                break
        return time.monotonic() - started

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_hooks(server: Server, receiver: NullReceiver) -> None:
    """Two site-wide hooks getting every event, each with a secret (signed deliveries)."""
    for name in ("first", "second"):
        add = [str(VENV_PYTHON), "-m", "cargobay", "webhook", "add", receiver.url(name)]
        where = ["--data-dir", str(server.data_dir)]
        subprocess.run(
            [*add, "--site", "--secret", secrets.token_hex(16), "--event", "*", *where],
            check=True,
            capture_output=True,
            env={**os.environ, "CARGOBAY_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"},
        )


def scrape(port: int) -> int:
    """Lines of the metrics exposition (a sanity check that metrics were on)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return len(r.read().splitlines())


def run_ops(bench: Bench) -> None:
    cfg = bench.cfg
    receiver = NullReceiver()
    metrics_port = free_port()
    off = bench.make_server(OFF, "cargobay", "0", bench.args.workers)
    on = bench.make_server(ON, "cargobay", "0", bench.args.workers)
    on.env = {
        "CARGOBAY_METRICS_PORT": str(metrics_port),
        "CARGOBAY_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }
    try:
        if not (bench.start(off) and bench.start(on)):
            return
        add_hooks(on, receiver)
        for s in (off, on):
            wl.setup_manifest(s, bench.fixtures.setdefault(s.label, wl.Fixture()))
        for rep in range(max(cfg.push_reps, 3)):
            for s in (off, on):
                pushed = wl.concurrent_pushes(s, PUSHES)
                total = float(pushed["push.total_s"])
                if s is on:  # the deliveries of those pushes go out, then the GETs start
                    pushed["ops.drain_s"] = receiver.settle()
                got = wl.manifest_get(s, cfg.rate_dur, bench.load_cpus)
                bench.res.add(s.label, {**pushed, "push.per_s": PUSHES / total, **got})
                print(
                    f"[bench] ops {s.label:17} rep {rep + 1}: {PUSHES / total:.1f} pushes/s,"
                    f" manifest GET {got['manifest_get.rps']:.0f} req/s"
                )
        lines = scrape(metrics_port)
        bench.res.note(
            ON,
            f"{receiver.count} webhook deliveries received (2 hooks); /metrics: {lines} lines",
        )
    finally:
        off.stop()
        on.stop()
        receiver.stop()


def table(res: Results) -> tuple[str, list[tuple[str, str, str]]]:
    lines = [
        "| workload | metric | ops off | ops on | ratio on/off | floor | check |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for what, metric, unit in (
        ("50 concurrent pushes", "push.per_s", "pushes/s ↑"),
        ("manifest GET by tag (wrk)", "manifest_get.rps", "req/s ↑"),
    ):
        plain, busy = res.median(OFF, metric), res.median(ON, metric)
        if plain and busy is not None:
            ok = busy / plain >= FLOOR
            verdict = f"{'PASS' if ok else 'FAIL'} ({_x(busy / plain, FLOOR)} ≥ {FLOOR}x)"
            ratio = f"{busy / plain:.2f}x"
        else:
            verdict, ratio = "SKIP", "—"
        verdicts.append((f"ops on vs off, {what}", verdict.split(" ")[0], verdict))
        lines.append(
            f"| {what} | {unit} | {fmt(plain)} | {fmt(busy)} | {ratio} | ≥{FLOOR}x | {verdict} |"
        )
    drain = res.median(ON, "ops.drain_s")
    if drain is not None:
        lines.append("")
        lines.append(
            f"Webhook deliveries of one round of pushes were all received {fmt(drain)} s"
            " (median, including 2 s of quiet) after the last push finished."
        )
    return "\n".join(lines), verdicts
