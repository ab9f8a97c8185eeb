"""`cargobay serve` as an operator runs it: the URL it prints, a taken port, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay's own command", allow_module_level=True)


def serve(port: int, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cargobay",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve(port, tmp_path / "data")
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out.strip() == f"cargobay: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_serve_prints_its_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = serve(port, tmp_path / "data")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert f"cargobay serving http://127.0.0.1:{port}" in out
    assert "there are no users yet" in out  # how to create the first administrator
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v2/")
