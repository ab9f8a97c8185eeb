"""Physical limits of this machine, measured in the same run as the servers.

- sha256: hashlib throughput on one core
- disk: write 256 MiB to the data directory's filesystem, then fsync
- loopback: a Python sender (load core) to receiver (server core) over TCP
- upload single-core limit: hashing + socket receive + disk write in series
- the bench's own HTTP clients against a null server (are they the bottleneck?)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from httpc import CHUNK, BlobData, Conn, MiB, download, upload_put

HERE = Path(__file__).resolve().parent


def sha256_mibps(total: int) -> float:
    buf = memoryview(os.urandom(CHUNK))
    h = hashlib.sha256()
    t = time.perf_counter()
    for _ in range(total // CHUNK):
        h.update(buf)
    return total / MiB / (time.perf_counter() - t)


def disk_mibps(directory: Path, total: int = 256 * MiB) -> float:
    """Write `total` bytes in 8 MiB writes and fsync; time includes the fsync."""
    buf = memoryview(os.urandom(CHUNK))
    path = directory / "disk-probe.bin"
    os.sync()
    try:
        t = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(total // CHUNK):
                os.write(fd, buf)
            os.fsync(fd)
        finally:
            os.close(fd)
        return total / MiB / (time.perf_counter() - t)
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def null_server(mode: str, cpus: str) -> Iterator[int]:
    """Run nullserver.py pinned to `cpus`; yields its port; stops exactly that PID."""
    proc = subprocess.Popen(
        ["taskset", "-c", cpus, sys.executable, str(HERE / "nullserver.py"), mode],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"null server did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loopback_mibps(port: int, total: int) -> float:
    buf = memoryview(os.urandom(CHUNK))
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(total // CHUNK):
            s.sendall(buf)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while len(got) < 8:
            part = s.recv(8 - len(got))
            if not part:
                break
            got += part
    elapsed = time.perf_counter() - t
    if len(got) != 8 or struct.unpack("<Q", got)[0] != total:
        raise RuntimeError("loopback receiver lost bytes")
    return total / MiB / elapsed


def client_upload_mibps(port: int, size: int) -> float:
    blob = BlobData(seed=999, size=size)
    _ = blob.digest
    with Conn("127.0.0.1", port) as c:
        t = time.perf_counter()
        upload_put(c, "null/sink", blob)
        return size / MiB / (time.perf_counter() - t)


def client_download_mibps(port: int, size: int) -> float:
    with Conn("127.0.0.1", port) as c:
        t = time.perf_counter()
        n = download(c, f"/blob?size={size}")
        elapsed = time.perf_counter() - t
    if n != size:
        raise RuntimeError(f"null source sent {n} bytes, wanted {size}")
    return size / MiB / elapsed


def series_limit(*rates: float) -> float:
    """Throughput of steps done one after another on one core: 1 / sum(1/r)."""
    return 1.0 / sum(1.0 / r for r in rates)
