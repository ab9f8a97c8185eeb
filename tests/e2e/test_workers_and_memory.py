"""Several worker processes share every upload; memory stays flat while streaming big blobs."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kit import digest_of

pytestmark = pytest.mark.e2e

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay-specific behaviour", allow_module_level=True)


def tree_pids(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            pids += tree_pids(int(child))
    return pids


def tree_rss(pid: int) -> int:
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            pass
    return total


def test_chunks_of_one_upload_land_on_different_workers(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(workers=2)
    assert len(tree_pids(server.process.pid)) >= 3, "expected a main process and 2 workers"
    repo = "scale/workers"
    parts = [os.urandom(256 * 1024 + i) for i in range(24)]
    data = b"".join(parts)
    digest = digest_of(data)
    # A new connection per request: the kernel spreads them over both workers.
    auth = server.auth
    start = httpx.post(f"{server.url}/v2/{repo}/blobs/uploads/", auth=auth)
    assert start.status_code == 202
    location = start.headers["Location"]
    offset = 0
    for part in parts:
        r = httpx.patch(
            f"{server.url}{location}",
            content=part,
            headers={"Content-Range": f"{offset}-{offset + len(part) - 1}"},
            auth=auth,
        )
        assert r.status_code == 202, r.text
        offset += len(part)
        assert r.headers["Range"] == f"0-{offset - 1}"
        status = httpx.get(f"{server.url}{location}", auth=auth)
        assert status.headers["Range"] == f"0-{offset - 1}"
    done = httpx.put(f"{server.url}{location}", params={"digest": digest}, auth=auth)
    assert done.status_code == 201, done.text
    pulled = httpx.get(f"{server.url}/v2/{repo}/blobs/{digest}", auth=auth)
    assert pulled.status_code == 200
    assert pulled.content == data


def test_memory_stays_flat_while_streaming_a_large_blob(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory()
    pid = server.process.pid
    size = 512 * 1024**2
    block = os.urandom(1024 * 1024)
    hasher = hashlib.sha256()
    for _ in range(size // len(block)):
        hasher.update(block)
    digest = "sha256:" + hasher.hexdigest()
    baseline = tree_rss(pid)
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, tree_rss(pid))

    def body() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with httpx.Client(base_url=server.url, timeout=120, auth=server.auth) as client:
            start = client.post("/v2/big/blob/blobs/uploads/")
            location = start.headers["Location"]
            r = client.patch(location, content=body())
            assert r.status_code == 202, r.text
            r = client.put(location, params={"digest": digest})
            assert r.status_code == 201, r.text
            received = hashlib.sha256()
            with client.stream("GET", f"/v2/big/blob/blobs/{digest}") as resp:
                assert resp.status_code == 200
                for chunk in resp.iter_bytes(1024 * 1024):
                    received.update(chunk)
            assert "sha256:" + received.hexdigest() == digest
    finally:
        stop.set()
        sampler.join()
    growth = peak - baseline
    assert growth < 100 * 1024 * 1024, f"server RSS grew by {growth / 2**20:.0f} MiB for 512 MiB"
