"""What HTTPS costs: blob GET throughput of cargobay over TLS (``serve --tls-cert``, a certificate
from ``cargobay tls init``) against the same cargobay over plain HTTP, in the same run.

Both servers are pinned to CPU 0, the client to CPU 1, and they alternate (plain, TLS, plain,
TLS, ...) as every other workload does. The floor: TLS keeps at least 90 % of plain HTTP's
MiB/s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import workloads as wl
from report import Results, _x, fmt

if TYPE_CHECKING:
    from harness import Bench

PLAIN, TLS = "cargobay-http", "cargobay-https"
FLOOR = 0.9
METRICS = [
    ("blob GET, whole", "get_whole.mibps", "MiB/s", True),
    ("blob GET, whole", "get_whole.cpu_gib", "CPU-s/GiB", False),
    ("blob GET, range", "get_range.mibps", "MiB/s", True),
    ("blob GET, range", "get_range.cpu_gib", "CPU-s/GiB", False),
]


def run_tls(bench: Bench) -> None:
    cfg = bench.cfg
    plain = bench.make_server(PLAIN, "cargobay", "0", bench.args.workers)
    secure = bench.make_server(TLS, "cargobay", "0", bench.args.workers)
    secure.tls_dir = bench.tmp / "tls"
    servers = [plain, secure]
    for s in servers:
        bench.fixtures[s.label] = wl.Fixture()
        if bench.start(s):
            wl.setup_get_blob(s, bench.fixtures[s.label], cfg.blob_size)
    live = bench.active(servers)
    size, half = cfg.blob_size, f"bytes=0-{cfg.blob_size // 2 - 1}"
    try:
        for rng in (None, half):
            bench.alternate(
                "tls",
                live,
                cfg.blob_reps,
                lambda s, rng=rng: wl.blob_get(
                    s, bench.fixtures[s.label], rng, size, cfg.get_total
                ),
            )
    finally:
        for s in servers:
            s.stop()


def table(res: Results) -> tuple[str, list[tuple[str, str, str]]]:
    lines = [
        "| workload | metric | HTTP | HTTPS | ratio HTTPS/HTTP | floor | check |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for name, metric, unit, floored in METRICS:
        plain, secure = res.median(PLAIN, metric), res.median(TLS, metric)
        ratio = f"{secure / plain:.2f}x" if plain and secure is not None else "—"
        verdict = ""
        if floored:
            if plain and secure is not None:
                ok = secure / plain >= FLOOR
                verdict = f"{'PASS' if ok else 'FAIL'} ({_x(secure / plain, FLOOR)} ≥ {FLOOR}x)"
            else:
                verdict = "SKIP"
            verdicts.append((f"HTTPS vs HTTP, {name}", verdict.split(" ")[0], verdict))
        arrow = "↑" if floored else "↓"
        lines.append(
            f"| {name} | {unit} {arrow} | {fmt(plain)} | {fmt(secure)} | {ratio} | "
            f"{f'≥{FLOOR}x' if floored else ''} | {verdict} |"
        )
    return "\n".join(lines), verdicts
