"""A data directory that fills up: a real ``cargobay serve`` on a small tmpfs (root only).

The disk fills in the middle of a PATCH, and space comes back while the body is still arriving.
The PATCH is refused with 507 (out of storage, no Retry-After, one log line naming the store
and the free space); the session keeps exactly the bytes it stored, reports them as its Range,
and resuming from there gives the byte-exact blob. ``/readyz`` says "not ready" while free space
is under the floor; pulls go on working on the full disk.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from images import OCI_MANIFEST, random_bytes
from kit import descriptor, digest_of, explain
from registry_http import EMPTY_CONFIG, EMPTY_CONFIG_TYPE, canonical, upload_blob, with_params

MIB = 1024 * 1024
TMPFS_SIZE = 48 * MIB
LEFT_FREE = 640 * 1024  # what the issue measured

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(ON_REFERENCE, reason="cargobay's answers to a full disk"),
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TMPFS_SIZE mounted as the data directory, unmounted afterwards."""
    mountpoint = tmp_path / "data"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all free space on ``disk`` but ``leave`` bytes, with one file."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    filler = disk / "filler"
    with filler.open("ab") as f:
        f.write(b"\0" * max(free - leave, 0))
    return filler


def range_end(r: httpx.Response) -> int:
    match = re.fullmatch(r"0-(\d+)", r.headers.get("range", ""))
    assert match, explain(r)
    return int(match.group(1))


def stored_size(http: httpx.Client, location: str) -> int:
    r = http.get(location)
    assert r.status_code == 204, explain(r)
    end = range_end(r)
    return 0 if end == 0 else end + 1


def test_disk_fills_mid_patch_then_frees(start_server_at: Any, small_disk: Path) -> None:
    server = start_server_at(small_disk, min_free_space=4 * MIB, min_free_percent=50)
    try:
        _scenario(server, small_disk)
    finally:
        server.stop()


def _scenario(server: Any, disk: Path) -> None:
    repo = "e2e/full-disk"
    data = random_bytes(8 * MIB)
    with httpx.Client(base_url=server.url, timeout=60, auth=server.auth) as http:
        earlier = random_bytes(100 * 1024)
        earlier_digest = upload_blob(http, repo, earlier)
        assert http.get("/readyz").status_code == 200

        filler = fill(disk, LEFT_FREE)
        r = http.get("/readyz")
        assert r.status_code == 503, explain(r)
        assert r.json()["free_space"] != "ok", r.text

        # Pulls work on the full disk.
        r = http.get(f"/v2/{repo}/blobs/{earlier_digest}")
        assert r.status_code == 200 and r.content == earlier, explain(r)

        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = r.headers["location"]

        sent = 0
        freed = threading.Event()

        def body() -> Iterator[bytes]:
            nonlocal sent
            for start in range(0, len(data), 64 * 1024):
                if sent >= 4 * MIB and not freed.is_set():
                    filler.unlink()  # space comes back while the body is still arriving
                    freed.set()
                piece = data[start : start + 64 * 1024]
                sent += len(piece)
                yield piece

        r = http.patch(
            location, content=body(), headers={"Content-Type": "application/octet-stream"}
        )
        assert freed.is_set(), "the body ended before space was freed"
        assert r.status_code == 507, explain(r)
        assert "retry-after" not in r.headers, explain(r)
        errors = r.json()["errors"]
        assert len(errors) == 1 and "out of storage" in errors[0]["message"], explain(r)

        log = server.log()
        lines = [line for line in log.splitlines() if "request refused, out of storage" in line]
        assert len(lines) == 1, log
        assert "filesystem blob store" in lines[0] and "bytes free" in lines[0], lines
        assert "metadata database is unavailable" not in log, log

        # The session holds exactly what was stored: resume from its Range.
        size = stored_size(http, location)
        assert 0 < size < len(data), size
        r = http.patch(
            location,
            content=data[size:],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{size}-{len(data) - 1}",
            },
        )
        assert r.status_code == 202, explain(r)
        assert range_end(r) == len(data) - 1, explain(r)
        digest = digest_of(data)
        r = http.put(with_params(r.headers["location"], digest=digest))
        assert r.status_code == 201, explain(r)
        r = http.get(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200, explain(r)
        assert r.content == data, "the blob is not the bytes pushed"

        r = http.get("/readyz")
        assert r.status_code == 200, explain(r)


def test_full_disk_refuses_manifests_and_monolithic_pushes_with_507(
    start_server_at: Any, small_disk: Path
) -> None:
    server = start_server_at(small_disk)
    try:
        with httpx.Client(base_url=server.url, timeout=60, auth=server.auth) as http:
            layer = random_bytes(4096)
            layers = [descriptor("application/vnd.oci.image.layer.v1.tar", layer)]
            upload_blob(http, "e2e/full-disk-mono", layer)
            upload_blob(http, "e2e/full-disk-mono", EMPTY_CONFIG)
            manifests = [
                canonical(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": descriptor(EMPTY_CONFIG_TYPE, EMPTY_CONFIG),
                        "layers": layers,
                        "annotations": {"n": str(n)},
                    }
                )
                for n in range(50)
            ]
            filler = fill(small_disk, 0)
            # Manifests: the metadata database is out of space too.
            answers = set()
            for n, manifest in enumerate(manifests):
                r = http.put(
                    f"/v2/e2e/full-disk-mono/manifests/v{n}",
                    content=manifest,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                answers.add(r.status_code)
                if r.status_code != 201:
                    break
            assert r.status_code == 507, explain(r)
            assert "retry-after" not in r.headers, explain(r)
            assert answers <= {201, 507}, answers
            filler.unlink()
            fill(small_disk, 64 * 1024)
            data = random_bytes(2 * MIB)
            r = http.post(
                "/v2/e2e/full-disk-mono/blobs/uploads/",
                params={"digest": digest_of(data)},
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status_code == 507, explain(r)
            assert "retry-after" not in r.headers, explain(r)
            assert r.json()["errors"][0]["message"] == "the registry is out of storage"
            r = http.get(f"/v2/e2e/full-disk-mono/blobs/{digest_of(data)}")
            assert r.status_code == 404, explain(r)
    finally:
        server.stop()
