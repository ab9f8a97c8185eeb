"""Process-tree accounting from /proc: CPU seconds and resident memory.

A server is measured as the whole tree below the PID we started (granian may fork
worker processes). Threads are included because /proc/<pid>/stat counts all of a
process's threads; children that already exited are included through cutime/cstime.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_pids(root: int) -> list[int]:
    """The root PID and all its descendants (via /proc/<pid>/task/<tid>/children)."""
    out: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            stack.extend(int(k) for k in kids)
    return out


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    return raw[raw.rindex(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """utime+stime (+ reaped children's cutime+cstime) summed over the tree, seconds."""
    ticks = 0
    for pid in tree_pids(root):
        f = _stat_fields(pid)
        if f is None:
            continue
        # fields after comm start at index 0 = state (field 3); utime is field 14
        ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def tree_rss_bytes(root: int) -> int:
    """Sum of resident set sizes over the tree (shared pages counted once per process)."""
    total = 0
    for pid in tree_pids(root):
        try:
            parts = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue
        total += int(parts[1]) * PAGE
    return total


def tree_pss_bytes(root: int) -> int:
    """Sum of proportional set sizes over the tree: pages shared between the processes
    (e.g. copy-on-write after granian forks its workers) are split, not counted twice."""
    total = 0
    for pid in tree_pids(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def alive(pid: int) -> bool:
    f = _stat_fields(pid)
    return f is not None and f[0] != "Z"


class RssSampler:
    """Samples the tree's RSS every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.root))
            self.peak_pss = max(self.peak_pss, tree_pss_bytes(self.root))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes(self.root))


class CpuMeter:
    """Wall time and server CPU seconds around a block."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> CpuMeter:
        self._c0 = tree_cpu_seconds(self.root)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        # let the server finish accounting for the last response
        self.cpu = tree_cpu_seconds(self.root) - self._c0
