"""One garbage collection of seeded blobs, timed (run by ``bench/gc_workload.py`` with
``python -P``, so that cargobay's imports don't see the bench's modules).

    gc_time.py DATABASE_URL ROOT COUNT   # DATABASE_URL "" : SQLite in ROOT

Seeds COUNT live blobs linked by a package and COUNT garbage blobs nothing references, uploaded
a day ago (rows through the metadata layer, 64 bytes each on disk), runs one collection with no
grace period (two runs: finding, then removing) and prints JSON: seconds per 10,000
garbage blobs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from cargobay.app import build_blob_store, build_gc, build_metadata, build_registry
from cargobay.metadata.engine import make_engine, migrate
from cargobay.metadata.schema import blob_links, blobs, repositories
from cargobay.settings import Settings


def seed(engine: sa.Engine, root: Path, garbage: int, live: int) -> None:
    old = datetime.now(UTC) - timedelta(days=1)
    rows, links = [], []
    with engine.begin() as c:
        package = c.execute(
            sa.insert(repositories)
            .values(name="bench/live", created_at=old)
            .returning(repositories.c.id)
        ).scalar_one()
        for i in range(garbage + live):
            data = f"blob {i} {uuid.uuid4()}".encode().ljust(64, b".")
            encoded = hashlib.sha256(data).hexdigest()
            digest = f"sha256:{encoded}"
            path = root / "blobs" / "sha256" / encoded[:2] / encoded
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            rows.append({"digest": digest, "size": 64, "state": "live", "touched_at": old})
            rows[-1]["created_at"] = old
            if i >= garbage:
                links.append(
                    {"repository_id": package, "digest": digest, "size": 64, "created_at": old}
                )
        c.execute(sa.insert(blobs), rows)
        c.execute(sa.insert(blob_links), links)


def main(database_url: str, root: Path, count: int) -> dict[str, float]:
    root.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=root, database_url=database_url)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    engine.dispose()
    metadata = build_metadata(settings)
    try:
        store = build_blob_store(settings)
        seed(metadata.engine, root, count, count)
        service = build_gc(settings, metadata, store, build_registry(settings, metadata, store))
        # Two runs, as a schedule makes them: the first finds the blobs nothing references
        # (their grace period starts), the second re-checks and removes them.
        started = time.perf_counter()
        first = asyncio.run(service.run_once(grace=0))
        found = time.perf_counter() - started
        time.sleep(0.05)
        started = time.perf_counter()
        report = asyncio.run(service.run_once(grace=0))
        removing = time.perf_counter() - started
    finally:
        metadata.close()
    removed = report.blobs_deleted + report.orphans_deleted
    if removed != count:
        raise SystemExit(f"removed {removed} blobs, not {count}: {report}")
    left = sum(1 for p in (root / "blobs").rglob("*") if p.is_file())
    if left != count:
        raise SystemExit(f"{left} blob files left, not the {count} live ones")
    if first.discovered != count:
        raise SystemExit(f"found {first.discovered} unreferenced blobs, not {count}")
    return {
        "gc.seconds_per_10k": (found + removing) * 10_000 / count,
        "gc.discover_per_10k": found * 10_000 / count,
        "gc.remove_per_10k": removing * 10_000 / count,
        "gc.checked": report.blobs_checked,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))))
