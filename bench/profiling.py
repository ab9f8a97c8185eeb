"""Profiles of a server under load (--profile): py-spy for Python frames, perf for the
split of CPU time between the interpreter, granian's Rust code, SQLite and the kernel."""

from __future__ import annotations

import collections
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# frames of the server's startup and process management, present in every stack
_BOOT = (
    "<frozen runpy>", "typer/", "click/", "multiprocessing/", "granian/server/",
    "cargobay/cli/", "cargobay/__main__.py",
)  # fmt: skip


def _during(cmd: list[str], load: Callable[[], object], timeout: float) -> str:
    """Run a profiler command while `load` runs; return the profiler's output."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.5)
        load()
        out, _ = proc.communicate(timeout=timeout)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def py_spy(
    py_spy_exe: Path | None, pid: int, dur: int, out: Path, load: Callable[[], object]
) -> list[str]:
    path = str(py_spy_exe) if py_spy_exe and py_spy_exe.exists() else shutil.which("py-spy")
    if not path:
        return ["py-spy not installed (.venv/bin/pip install py-spy)"]
    cmd = ["taskset", "-c", "1", path, "record", "--pid", str(pid), "--subprocesses"]
    cmd += ["--rate", "250", "--duration", str(dur), "--format", "raw", "--output", str(out)]
    cmd.append("--nonblocking")
    text = _during(cmd, load, dur + 30)
    if not out.exists():
        return [f"py-spy produced nothing: {text[-300:]}"]
    return summarize_py_spy(out.read_text())


def perf(pids: list[int], dur: int, out: Path, load: Callable[[], object]) -> list[str]:
    exe = shutil.which("perf")
    if not exe:
        return ["perf not installed"]
    cmd = ["taskset", "-c", "1", exe, "record", "-F", "999", "-p", ",".join(map(str, pids))]
    cmd += ["-o", str(out), "--", "sleep", str(dur)]
    text = _during(cmd, load, dur + 30)
    if not out.exists():
        return [f"perf produced nothing: {text[-300:]}"]
    rep = subprocess.run(
        [exe, "report", "-i", str(out), "--sort", "dso", "--stdio"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = [ln.strip() for ln in rep.stdout.splitlines() if ln.strip()[:1].isdigit()]
    return ["CPU samples by shared object (perf, all threads):", *rows[:8]]


def summarize_py_spy(raw: str, top: int = 12) -> list[str]:
    """Own time per package and per frame, and the app's own frames by inclusive time,
    from py-spy's collapsed stacks. Percentages are of the samples that were in Python
    request code: py-spy also reports granian's Rust threads and the processes' main
    loops (no Python frame beyond startup), which are mostly waiting (perf shows CPU)."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    pkgs: collections.Counter[str] = collections.Counter()
    total = outside = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [
            f
            for f in stack.split(";")
            if f and not f.startswith(("process ", "thread ")) and not any(b in f for b in _BOOT)
        ]
        if not frames:
            outside += n
            continue
        total += n
        own[frames[-1]] += n
        pkgs[_package(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return ["no samples in Python request code"]
    lines = [
        f"{total} samples in Python request code (+{outside} with no Python frame: "
        "granian's Rust threads and main loops, left out)",
        "",
        "own time by package:",
    ]
    lines += [f"{n / total:6.1%}  {p}" for p, n in pkgs.most_common(8)]
    lines += ["", "top frames by own time:"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "cargobay frames by inclusive time:"]
    app = [(f, n) for f, n in incl.most_common() if "(cargobay/" in f]
    lines += [f"{n / total:6.1%}  {f}" for f, n in app[:top]]
    return lines


def _package(frame: str) -> str:
    if frame.startswith("(") or "(" not in frame:
        return frame
    path = frame.rsplit("(", 1)[1].split(":", 1)[0]
    if "/" not in path:
        return path if path.startswith("<") else "stdlib"
    head = path.split("/", 1)[0]
    return f"stdlib {head}" if head in ("asyncio", "concurrent", "json", "email") else head
