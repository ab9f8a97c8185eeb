"""Results: samples per server, medians, the comparison table and the floor checks."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Sample = Mapping[str, float | str]  # one measurement: metric -> value (str: a note)
UP = "↑"  # higher is better
DOWN = "↓"  # lower is better


@dataclass
class Results:
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)

    def add(self, label: str, sample: Sample) -> None:
        for k, v in sample.items():
            if isinstance(v, str):
                self.note(label, f"{k}: {v}")
            else:
                self.samples.setdefault(label, {}).setdefault(k, []).append(float(v))

    def error(self, label: str, workload: str, msg: str) -> None:
        self.errors.setdefault(label, {}).setdefault(workload, msg)

    def note(self, label: str, msg: str) -> None:
        notes = self.notes.setdefault(label, [])
        if msg not in notes:
            notes.append(msg)

    def median(self, label: str, metric: str) -> float | None:
        vals = self.samples.get(label, {}).get(metric)
        return statistics.median(vals) if vals else None

    def count(self, label: str, metric: str) -> int:
        return len(self.samples.get(label, {}).get(metric, []))


Check = Callable[[float, float | None, "Results"], tuple[bool, str] | None]


@dataclass
class Row:
    workload: str
    metric: str  # key in Results.samples
    unit: str
    direction: str  # UP | DOWN | "" (informational)
    floor: str = ""
    check: Check | None = None
    group: str = ""  # error key of the workload (to show why a value is missing)
    ratio: bool = True  # False where cargobay/reference means nothing


def _x(v: float, k: float) -> str:
    """A ratio with enough decimals that it never prints equal to the floor it misses."""
    return f"{v:.2f}x" if round(v, 2) != k else f"{v:.3f}x"


def ratio_at_least(k: float) -> Check:
    def check(c: float, r: float | None, _: Results) -> tuple[bool, str] | None:
        if r is None or r == 0:
            return None
        return c / r >= k, f"{_x(c / r, k)} ≥ {k}x"

    return check


def ratio_at_most(k: float) -> Check:
    def check(c: float, r: float | None, _: Results) -> tuple[bool, str] | None:
        if r is None or r == 0:
            return None
        return c / r <= k, f"{_x(c / r, k)} ≤ {k}x"

    return check


def at_most(limit: float, unit: str) -> Check:
    def check(c: float, _r: float | None, _: Results) -> tuple[bool, str] | None:
        return c <= limit, f"{c:.3g} ≤ {limit:g} {unit}"

    return check


def get_floor(k_ref: float, k_loop: float) -> Check:
    def check(c: float, r: float | None, res: Results) -> tuple[bool, str] | None:
        loop = res.limits.get("loopback")
        parts: list[tuple[bool, str]] = []
        if r:
            parts.append((c / r >= k_ref, f"{_x(c / r, k_ref)} ref ≥ {k_ref}x"))
        if loop:
            parts.append((c / loop >= k_loop, f"{_x(c / loop, k_loop)} loopback ≥ {k_loop}x"))
        if not parts:
            return None
        return all(p[0] for p in parts), ", ".join(p[1] for p in parts)

    return check


def rows(cfg: dict[str, str]) -> list[Row]:
    big, a, b, tags = cfg["rss_big"], cfg["rss_a"], cfg["rss_b"], cfg["tags"]
    return [
        Row(
            "1 upload 256 MiB, POST + PUT body",
            "upload_put.mibps",
            "MiB/s",
            UP,
            "≥1.5x ref",
            ratio_at_least(1.5),
            "upload_put",
        ),
        Row(
            "1 upload 256 MiB, POST + PUT body",
            "upload_put.cpu_gib",
            "CPU-s/GiB",
            DOWN,
            "≤0.5x ref",
            ratio_at_most(0.5),
            "upload_put",
        ),
        Row(
            "2 upload 256 MiB, 8 MiB PATCHes",
            "upload_chunked.mibps",
            "MiB/s",
            UP,
            "≥1.5x ref",
            ratio_at_least(1.5),
            "upload_chunked",
        ),
        Row(
            "2 upload 256 MiB, 8 MiB PATCHes",
            "upload_chunked.cpu_gib",
            "CPU-s/GiB",
            DOWN,
            "≤0.5x ref",
            ratio_at_most(0.5),
            "upload_chunked",
        ),
        Row(
            "2 256 PATCHes of 64 KiB (cost per request)",
            "upload_chunked.cpu_ms_patch",
            "CPU-ms/PATCH",
            DOWN,
            group="upload_chunked",
        ),
        Row(
            "2 256 PATCHes of 64 KiB (cost per request)",
            "upload_chunked.patches_s",
            "PATCHes/s",
            UP,
            group="upload_chunked",
        ),
        Row(
            "3 blob GET 256 MiB",
            "get_whole.mibps",
            "MiB/s",
            UP,
            "≥1.2x ref, ≥0.8x loopback",
            get_floor(1.2, 0.8),
            "get_whole",
        ),
        Row(
            "3 blob GET 256 MiB",
            "get_whole.cpu_gib",
            "CPU-s/GiB",
            DOWN,
            "≤0.7x ref",
            ratio_at_most(0.7),
            "get_whole",
        ),
        Row(
            "3 blob GET Range 128 MiB",
            "get_range.mibps",
            "MiB/s",
            UP,
            "≥1.2x ref, ≥0.8x loopback",
            get_floor(1.2, 0.8),
            "get_range",
        ),
        Row(
            "3 blob GET Range 128 MiB",
            "get_range.cpu_gib",
            "CPU-s/GiB",
            DOWN,
            "≤0.7x ref",
            ratio_at_most(0.7),
            "get_range",
        ),
        Row(
            "4 manifest GET by tag (wrk, c=32)",
            "manifest_get.rps",
            "req/s",
            UP,
            "≥8x ref",
            ratio_at_least(8),
            "manifest_get",
        ),
        Row(
            "4 manifest GET by tag (wrk, c=32)",
            "manifest_get.p99",
            "p99 ms",
            DOWN,
            "≤10 ms",
            at_most(10, "ms"),
            "manifest_get",
        ),
        Row(
            "4 manifest HEAD by tag (ab -k, c=32)",
            "manifest_head.rps",
            "req/s",
            UP,
            "≥8x ref",
            ratio_at_least(8),
            "manifest_head",
        ),
        Row(
            "4 manifest HEAD by tag (ab -k, c=32)",
            "manifest_head.p99",
            "p99 ms",
            DOWN,
            "≤10 ms",
            at_most(10, "ms"),
            "manifest_head",
        ),
        Row("5 GET /v2/ (wrk, c=32)", "v2.rps", "req/s", UP, group="v2"),
        Row("5 GET /v2/ (wrk, c=32)", "v2.p99", "p99 ms", DOWN, group="v2"),
        Row("6 token issuance (wrk, c=32)", "token.rps", "req/s", UP, group="token"),
        Row("6 token issuance (wrk, c=32)", "token.p99", "p99 ms", DOWN, group="token"),
        Row(f"7 tag list walk, {tags} tags, n=100", "tags.walk_s", "s total", DOWN, group="tags"),
        Row(f"7 tag list walk, {tags} tags, n=100", "tags.pages_s", "pages/s", UP, group="tags"),
        Row(
            f"7 tag list walk, {tags} tags, n=100",
            "tags.pages",
            "pages",
            "",
            "",
            None,
            "tags",
            ratio=False,
        ),
        Row(
            f"7 setup: PUT manifest under {tags} tags, c=16",
            "tags.put_rps",
            "tags/s",
            UP,
            group="tags",
        ),
        Row("8 50 concurrent pushes, shared bases", "push.total_s", "s total", DOWN, group="push"),
        Row(
            "8 50 concurrent pushes, shared bases",
            "push.errors",
            "errors",
            DOWN,
            "0 errors (extra)",
            at_most(0, "errors"),
            "push",
            ratio=False,
        ),
        Row(
            f"9 peak RSS, {big} blob up + down",
            "rss.peak_mb",
            "MB",
            DOWN,
            "≤200 MB",
            at_most(200, "MB"),
            "rss_big",
        ),
        Row(
            f"9 peak PSS, {big} blob up + down",
            "rss.peak_pss_mb",
            "MB (PSS)",
            DOWN,
            group="rss_big",
        ),
        Row(f"9 RSS after {a} small requests", "rss.small_a_mb", "MB", "", group="rss_small"),
        Row(f"9 RSS after {b} small requests", "rss.small_b_mb", "MB", "", group="rss_small"),
        Row(
            f"9 RSS growth {a}→{b}",
            "rss.growth_pct",
            "%",
            DOWN,
            "≤10%",
            at_most(10, "%"),
            "rss_small",
            ratio=False,
        ),
    ]


WORKER_METRICS = [
    ("1 upload POST + PUT", "upload_put.mibps", "MiB/s", False),
    ("2 upload chunked", "upload_chunked.mibps", "MiB/s", False),
    ("3 blob GET", "get_whole.mibps", "MiB/s", False),
    ("3 blob GET Range", "get_range.mibps", "MiB/s", False),
    ("4 manifest GET", "manifest_get.rps", "req/s", True),
    ("4 manifest HEAD", "manifest_head.rps", "req/s", True),
    ("5 GET /v2/", "v2.rps", "req/s", True),
]


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    a = abs(v)
    if float(v).is_integer():
        return f"{int(v):,}"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cell(res: Results, label: str, row: Row, skipped: dict[str, str]) -> str:
    if label in skipped:
        return "skipped"
    v = res.median(label, row.metric)
    if v is not None:
        return fmt(v)
    err = res.errors.get(label, {}).get(row.group)
    if err:
        return "not run" if err.startswith("not run") else "error"
    if row.group == "token":
        return "n/a (no auth)"
    return "—"


def table(
    res: Results,
    cfg: dict[str, str],
    a: str = "cargobay",
    b: str = "reference",
    skipped: dict[str, str] | None = None,
) -> tuple[str, list[tuple[str, str, str]]]:
    """The Markdown comparison table and the list of (check, verdict, detail)."""
    skipped = skipped or {}
    lines = [
        f"| workload | metric | {a} | {b} | ratio {a}/{b} | floor | check |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    verdicts: list[tuple[str, str, str]] = []
    for row in rows(cfg):
        va, vb = res.median(a, row.metric), res.median(b, row.metric)
        ratio = f"{va / vb:.2f}x" if va is not None and vb and row.ratio else "—"
        verdict = ""
        if row.check:
            if va is None:
                verdict = "SKIP"
            else:
                out = row.check(va, vb, res)
                if out is None:
                    verdict = "SKIP"
                else:
                    ok, detail = out
                    verdict = f"{'PASS' if ok else 'FAIL'} ({detail})"
            verdicts.append((f"{row.workload}: {row.unit}", verdict.split(" ")[0], verdict))
        metric = f"{row.unit} {row.direction}".strip()
        lines.append(
            f"| {row.workload} | {metric} | {cell(res, a, row, skipped)} | "
            f"{cell(res, b, row, skipped)} | {ratio} | {row.floor} | {verdict} |"
        )
    return "\n".join(lines), verdicts


def limits_table(res: Results) -> str:
    names = [
        ("sha256", "hashlib sha256, one core"),
        ("disk", "disk write 256 MiB + fsync (data dir filesystem)"),
        ("loopback", "loopback TCP, Python sender (CPU 1) → receiver (CPU 0)"),
        ("upload_limit", "single-core upload limit 1/(1/sha + 1/loopback + 1/disk)"),
        ("client_upload", "bench upload client → null sink (client check)"),
        ("client_download", "bench download client ← null source (client check)"),
    ]
    lines = ["| limit | MiB/s |", "|---|---:|"]
    for key, label in names:
        lines.append(f"| {label} | {fmt(res.limits.get(key))} |")
    return "\n".join(lines)


def workers_table(res: Results, w1: str, w2: str) -> tuple[str, list[tuple[str, str, str]]]:
    lines = [
        "| workload | metric | workers 1 | workers 2 | ratio 2/1 | floor | check |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for name, metric, unit, floored in WORKER_METRICS:
        v1, v2 = res.median(w1, metric), res.median(w2, metric)
        ratio = f"{v2 / v1:.2f}x" if v1 and v2 is not None else "—"
        verdict = ""
        if floored:
            if v1 and v2 is not None:
                ok = v2 / v1 >= 1.6
                verdict = f"{'PASS' if ok else 'FAIL'} ({_x(v2 / v1, 1.6)} ≥ 1.6x)"
            else:
                verdict = "SKIP"
            verdicts.append((f"workers 2 vs 1, {name}", verdict.split(" ")[0], verdict))
        lines.append(
            f"| {name} | {unit} ↑ | {fmt(v1)} | {fmt(v2)} | {ratio} | "
            f"{'≥1.6x' if floored else ''} | {verdict} |"
        )
    return "\n".join(lines), verdicts
