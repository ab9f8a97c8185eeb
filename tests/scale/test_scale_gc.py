"""Online garbage collection on PostgreSQL + S3 (Ceph RGW), from the outside: two replicas
take pushes (monolithic, chunked, mounts, shared base layers across repositories) and deletions
while ``cargobay gc`` runs in a loop with a tiny grace period beside the replicas' own
collectors (every 5 s; one runs at a time); afterwards every image not
deleted pulls byte for byte through either replica (blob GETs redirect to the bucket) and the
database and bucket agree."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from scalekit import NAMESPACE, ReplicaSet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from gcload import GcLoop, figures, run_workload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SECONDS = float(os.environ.get("CARGOBAY_TEST_GC_SECONDS", "30"))


def test_pushes_beside_the_collector_lose_nothing_on_postgres_and_s3(
    make_replicas: Callable[..., ReplicaSet],
    s3_service,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    replicas = make_replicas(2, restore_window=1, purge_interval=0.5, gc_interval=5, gc_grace=0.5)
    auth = (replicas.user, replicas.token)
    loop = GcLoop(replicas.root / "gc", replicas.env)
    urls = [r.url for r in replicas]
    tally, lost = run_workload(urls, auth, NAMESPACE, loop, SECONDS)
    with capsys.disabled():
        print(f"\nPostgreSQL + S3: {figures(tally, loop, lost)}")
    assert tally.errors == [] and loop.failures == [], (tally.errors, loop.failures[-1:])
    assert lost == []
    assert tally.pushes >= 10 and tally.deletes >= 3 and len(tally.alive) >= 3
    url = "postgresql+psycopg://" + replicas.env["CARGOBAY_DATABASE_URL"].split("://", 1)[1]
    engine = sa.create_engine(url)
    with engine.connect() as c:
        linked = set(c.execute(sa.text("SELECT digest FROM blob_links")).scalars())
        unsettled = c.execute(sa.text("SELECT digest FROM blobs WHERE state <> 'live'")).all()
        rows = set(c.execute(sa.text("SELECT digest FROM blobs")).scalars())
        left = c.execute(
            sa.text(
                "SELECT (SELECT COUNT(*) FROM manifests WHERE deleted_at IS NOT NULL),"
                " (SELECT COUNT(*) FROM unreferenced_blobs)"
            )
        ).one()
    engine.dispose()
    client = s3_service.client()
    stored = set()
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=replicas.bucket, Prefix="blobs/"
    ):
        for item in page.get("Contents", []):
            _, algorithm, encoded = item["Key"].split("/")
            stored.add(f"{algorithm}:{encoded}")
    with capsys.disabled():
        print(f"deleted versions not purged, candidates left: {tuple(left)}")
    assert linked <= stored, "every linked blob has its bytes"
    assert unsettled == []
    assert stored <= rows, "no bytes the metadata doesn't know are left after a last run"
    assert not tally.garbage & stored, "what only deleted images used is gone"
    assert loop.total("blobs_deleted") > 0, "garbage was collected while pushes went on"
