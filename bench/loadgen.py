"""wrk (GET) and ab (HEAD, fixed request counts) wrappers. Both return a dict:
rps, p99_ms, requests, errors."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

WRK_LUA = """\
wrk.method = "{method}"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,"
    .. "\\"status\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


class LoadError(Exception):
    pass


def _lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(
    url: str,
    headers: dict[str, str],
    duration: float,
    conns: int = 32,
    threads: int = 2,
    cpus: str = "1",
    method: str = "GET",
) -> dict[str, float]:
    hdr = "\n".join(f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}" for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="cargobay-bench-") as f:
        f.write(WRK_LUA.format(method=method, headers=hdr))
        f.flush()
        cmd = ["taskset", "-c", cpus, "wrk", f"-t{threads}", f"-c{conns}"]
        cmd += [f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", f.name, url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"^BENCHJSON (.*)$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise LoadError(f"wrk failed ({r.returncode}): {r.stdout[-400:]} {r.stderr[-400:]}")
    d = json.loads(m.group(1))
    errors = d["status"] + d["connect"] + d["read"] + d["write"] + d["timeout"]
    return {
        "rps": d["requests"] / (d["duration_us"] / 1e6),
        "p99_ms": d["p99_us"] / 1000.0,
        "p50_ms": d["p50_us"] / 1000.0,
        "requests": d["requests"],
        "errors": errors,
    }


def ab(
    url: str,
    headers: dict[str, str],
    duration: float | None = None,
    requests: int | None = None,
    conns: int = 32,
    head: bool = False,
    cpus: str = "1",
) -> dict[str, float]:
    """ab -k; with duration: run for that long; with requests: exactly that many."""
    with tempfile.NamedTemporaryFile("r", suffix=".csv", prefix="cargobay-bench-") as csv:
        cmd = ["taskset", "-c", cpus, "ab", "-k", "-q", "-c", str(conns), "-e", csv.name]
        if head:
            cmd.append("-i")
        if duration is not None:
            cmd += ["-t", str(max(1, round(duration))), "-n", "100000000"]
        else:
            cmd += ["-n", str(requests)]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        cmd.append(url)
        limit = (duration or 0) + 30 + (requests or 0) / 50
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        percentiles = csv.read()
    out = r.stdout
    if r.returncode != 0 or "Requests per second" not in out:
        raise LoadError(f"ab failed ({r.returncode}): {out[-400:]} {r.stderr[-400:]}")

    def num(pattern: str, default: float = 0.0) -> float:
        mm = re.search(pattern, out)
        return float(mm.group(1)) if mm else default

    p99 = None
    for line in percentiles.splitlines():
        parts = line.split(",")
        if parts[0] == "99":
            p99 = float(parts[1])
    if p99 is None:
        p99 = num(r"^\s*99%\s+(\d+)", 0.0)
    return {
        "rps": num(r"Requests per second:\s+([\d.]+)"),
        "p99_ms": p99,
        "requests": num(r"Complete requests:\s+(\d+)"),
        "errors": num(r"Failed requests:\s+(\d+)") + num(r"Non-2xx responses:\s+(\d+)"),
    }


def tools_present() -> dict[str, bool]:
    return {t: Path(f"/usr/bin/{t}").exists() for t in ("wrk", "ab", "taskset")}
