"""What each granian worker process loads: the app, tied to the life of the main process."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

from starlette.applications import Starlette

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


def worker_app() -> Starlette:
    _die_with_parent()
    return create_app()
