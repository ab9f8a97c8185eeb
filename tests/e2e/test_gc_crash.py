"""``cargobay gc`` killed with SIGKILL at random points of a run that has thousands of blobs to
remove, then run again: what it had decided is finished, nothing live is lost, the metadata is
consistent, and the killed deletions' bytes can be pushed again."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from gcload import Pusher, Tally, verify
from kit import digest_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

GARBAGE = 3000
ORPHANS = 1000


def plant_garbage(data_dir: Path) -> list[bytes]:
    """Blobs purge left unreferenced (a row, a candidate, bytes) and bytes no metadata knows,
    written straight into the data directory, old enough for any grace period."""
    old = time.time() - 86400
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat(sep=" ")
    contents = [os.urandom(64) + str(i).encode() for i in range(GARBAGE + ORPHANS)]
    rows = []
    for i, data in enumerate(contents):
        encoded = hashlib.sha256(data).hexdigest()
        path = data_dir / "blobs" / "sha256" / encoded[:2] / encoded
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (old, old))
        if i < GARBAGE:
            rows.append((f"sha256:{encoded}", len(data)))
    with sqlite3.connect(data_dir / "cargobay.db") as db:
        db.executemany(
            "INSERT INTO blobs (digest, size, state, touched_at, created_at)"
            " VALUES (?, ?, 'live', ?, ?)",
            [(d, s, since, since) for d, s in rows],
        )
        db.executemany(
            "INSERT INTO unreferenced_blobs (digest, since) VALUES (?, ?)",
            [(d, since) for d, _ in rows],
        )
    return contents


def remaining(data_dir: Path, contents: list[bytes]) -> int:
    return sum(
        (data_dir / "blobs" / "sha256" / h[:2] / h).exists()
        for h in (hashlib.sha256(c).hexdigest() for c in contents)
    )


def candidates(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "cargobay.db", timeout=30) as db:
        return int(db.execute("SELECT COUNT(*) FROM unreferenced_blobs").fetchone()[0])


def gc_process(server, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cargobay",
            "gc",
            "--json",
            "--data-dir",
            str(server.data_dir),
            *args,
        ],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_collections_then_a_rerun_leave_a_consistent_registry(
    server_factory,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    server = server_factory()
    assert server.auth is not None
    tally = Tally()
    pusher = Pusher([server.url], server.auth, "crash", [os.urandom(20_000)])
    keep = [pusher.push_image(f"crash/gc-{i % 3}", f"v{i}", tally, "crash/gc-0") for i in range(6)]
    contents = plant_garbage(server.data_dir)
    total = len(contents)
    mid_run = kills = decided = 0
    rng = random.Random()
    for attempt in range(8):
        before = remaining(server.data_dir, contents)
        if before == 0:
            break
        process = gc_process(server, "--grace", "1h")
        if attempt % 4 == 3:
            time.sleep(rng.uniform(0.2, 3.0))  # anywhere, start-up included
        else:
            # Once the run has started deciding, at a random moment of its deletions.
            while process.poll() is None and candidates(server.data_dir) == GARBAGE - decided:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.3))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        after = remaining(server.data_dir, contents)
        decided = GARBAGE - candidates(server.data_dir)
        mid_run += 0 < after < before
    with sqlite3.connect(server.data_dir / "cargobay.db") as db:
        half_done = db.execute("SELECT COUNT(*) FROM blobs WHERE state = 'deleting'").fetchone()[0]
    final = gc_process(server, "--grace", "1h")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    with capsys.disabled():
        print(
            f"\nkill -9: {kills} kills, {mid_run} in the middle of deleting,"
            f" {half_done} decided deletions left for the rerun; rerun: {out.strip()}"
        )
    assert kills >= 1 and mid_run >= 1
    assert remaining(server.data_dir, contents) == 0, f"of {total}"
    with sqlite3.connect(server.data_dir / "cargobay.db") as db:
        assert db.execute("SELECT COUNT(*) FROM blobs WHERE state <> 'live'").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM unreferenced_blobs").fetchone()[0] == 0
        dangling = db.execute(
            "SELECT digest FROM blob_links EXCEPT SELECT digest FROM blobs"
        ).fetchall()
    assert dangling == []
    assert verify([server.url], server.auth, keep) == []
    # Bytes whose deletion a killed run had decided can be pushed again and read back.
    again = contents[0]
    digest = digest_of(again)
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as http:
        r = http.post("/v2/crash/gc-again/blobs/uploads/")
        r = http.put(
            httpx.URL(r.headers["location"]).copy_merge_params({"digest": digest}), content=again
        )
        assert r.status_code == 201, r.text
        assert http.get(f"/v2/crash/gc-again/blobs/{digest}").content == again
