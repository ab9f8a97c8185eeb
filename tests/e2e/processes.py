"""Crash a server for real: SIGKILL its main process *and* every process it started.

``Server.kill()`` signals only the main process. A ``cargobay serve`` runs its HTTP workers as
child processes; they survive their parent's SIGKILL (reparented to init) and keep serving the
port, so a test that kills only the parent has not crashed anything. A machine or container
crash takes the whole tree down: that is what :func:`crash` does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces or parentheses; split after the last ")".
    return int(stat.rpartition(")")[2].split()[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    out: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            out.append(child)
            pending.append(child)
    return out


def crash(server: Any, timeout: float = 30) -> list[int]:
    """SIGKILL ``server``'s process and all its descendants; wait until none is alive.

    Returns the pids of the descendants that were killed (empty for a single-process server).
    """
    tree = descendants(server.process.pid)
    for pid in [server.process.pid, *tree]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in tree):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {tree} survived SIGKILL")
        time.sleep(0.02)
    return tree
