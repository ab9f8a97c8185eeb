"""Online garbage collection on SQLite + filesystem, from the outside: pushes (monolithic,
chunked, mounts, shared base layers across repositories) and deletions go on while
``cargobay gc`` runs in a loop with a tiny grace period (and the server's own collector too);
afterwards every image not deleted pulls byte for byte and the metadata is consistent."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from gcload import GcLoop, figures, run_workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SECONDS = float(os.environ.get("CARGOBAY_TEST_GC_SECONDS", "30"))


def stored_digests(data_dir: Path) -> set[str]:
    root = data_dir / "blobs"
    return {
        f"{algorithm.name}:{blob.name}"
        for algorithm in root.iterdir()
        for prefix in algorithm.iterdir()
        for blob in prefix.iterdir()
    }


def test_pushes_beside_the_collector_lose_nothing(server_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(
        workers=2, restore_window=1, purge_interval=0.5, gc_interval=5, gc_grace=0.5
    )
    assert server.auth is not None
    loop = GcLoop(server.data_dir, server.env)
    tally, lost = run_workload([server.url], server.auth, "e2e", loop, SECONDS)
    with capsys.disabled():
        print(f"\nSQLite + filesystem: {figures(tally, loop, lost)}")
    assert tally.errors == [] and loop.failures == []
    assert lost == []
    assert tally.pushes >= 10 and tally.deletes >= 3 and len(tally.alive) >= 3
    assert {"mount", "chunked", "monolithic"} <= set(tally.blobs_sent)
    assert loop.total("blobs_deleted") > 0, "garbage was collected while pushes went on"
    with sqlite3.connect(server.data_dir / "cargobay.db") as db:
        linked = {d for (d,) in db.execute("SELECT digest FROM blob_links")}
        unsettled = db.execute("SELECT digest FROM blobs WHERE state <> 'live'").fetchall()
        rows = {d for (d,) in db.execute("SELECT digest FROM blobs")}
    stored = stored_digests(server.data_dir)
    assert linked <= stored, "every linked blob has its bytes"
    assert unsettled == []
    assert stored <= rows, "no bytes the metadata doesn't know are left after a last run"
    assert not tally.garbage & stored, "what only deleted images used is gone"
