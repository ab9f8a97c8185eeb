"""What each granian worker process loads: the app, tied to the life of the main process."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import signal
import sys

from starlette.types import ASGIApp

from cargobay.app import create_app

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the main process dies, even by SIGKILL,
    so a crashed server never leaves workers holding the port."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the main process died before prctl took effect
        os._exit(1)


def worker_app() -> ASGIApp:
    _die_with_parent()
    app = create_app()
    # Everything loaded so far lives as long as the worker: keep it out of the collector's
    # scans so the collections that requests trigger stay short (they set the tail latency).
    gc.collect()
    gc.freeze()
    return app
