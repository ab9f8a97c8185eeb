"""The garbage collector (GcService.run_once) on every SQL backend, over a filesystem store:
what it removes, what it must keep (shared layers, index children, referrers, versions in their
restore window, fresh uploads), dry runs, interrupted runs, and uploads racing a deletion."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from kit import digest_of

from cargobay.errors import Unavailable
from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName
from cargobay.services.blobs import BlobService
from cargobay.services.gc import GcService
from cargobay.services.manifests import ManifestService
from cargobay.services.uploads import UploadService
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.uploads import new_upload_id

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


class Registry:
    """The services a push goes through, the garbage collector, and looks behind their backs."""

    def __init__(self, meta: SqlMetadata, root: Path) -> None:
        self.meta = meta
        self.store = FilesystemBlobStore(root)
        self.uploads = UploadService(
            self.store, meta.uploads, meta.blobs, max_blob_size=10**9, timeout=600
        )
        self.blobs = BlobService(self.store, meta.blobs)
        self.manifests = ManifestService(
            meta.manifests, meta.repositories, self.store, max_manifest_size=4 * 1024 * 1024
        )
        self.gc = GcService(meta.gc, self.store, self.uploads, meta.uploads, grace=0)

    async def push_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        await self.uploads.upload(RepositoryName(repo), Digest(digest), chunks(data), len(data))
        return digest

    async def push_image(self, repo: str, tag: str | None, *layers: bytes, **extra: Any) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": repo}).encode()
        await self.push_blob(repo, config)
        for layer in layers:
            await self.push_blob(repo, layer)
        body = manifest(config, layers, **extra)
        pushed = await self.manifests.put(
            RepositoryName(repo), tag or digest_of(body), body, OCI_MANIFEST
        )
        return str(pushed.digest)

    async def read(self, digest: str) -> bytes:
        return b"".join([c async for c in self.store.read(Digest(digest))])

    async def stored(self) -> set[str]:
        return {str(b.digest) async for b in self.store.iter_blobs()}

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        with self.meta.engine.connect() as c:
            return sorted(tuple(r) for r in c.execute(sa.text(f"SELECT * FROM {table}")))

    async def purge(self) -> None:
        await self.meta.package_records.purge(datetime.now(UTC) + timedelta(seconds=1))

    async def delete(self, repo: str, digest: str) -> None:
        await self.manifests.delete(RepositoryName(repo), digest)

    def consistent(self) -> None:
        """Every linked or listed blob has a live row; no deletion is left half done."""
        with self.meta.engine.connect() as c:
            dangling = c.execute(
                sa.text(
                    "SELECT digest FROM blob_links UNION SELECT digest FROM manifest_refs"
                    " WHERE kind = 'blob' EXCEPT SELECT digest FROM blobs WHERE state = 'live'"
                )
            ).all()
            deleting = c.execute(sa.text("SELECT digest FROM blobs WHERE state <> 'live'")).all()
        assert dangling == [] and deleting == []


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def manifest(config: bytes, layers: tuple[bytes, ...], **extra: Any) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": digest_of(x), "size": len(x)} for x in layers],
        **extra,
    }
    return json.dumps(doc).encode()


@pytest.fixture
def registry(meta: SqlMetadata, tmp_path: Path) -> Registry:
    return Registry(meta, tmp_path / "blobs")


async def test_purged_blobs_go_shared_layers_stay(registry: Registry) -> None:
    base, only_a, only_b = os.urandom(3000), os.urandom(2000), os.urandom(1000)
    a = await registry.push_image("acme/a", "v1", base, only_a)
    await registry.push_image("acme/b", "v1", base, only_b)
    before = await registry.stored()
    await registry.delete("acme/a", a)
    report = await registry.gc.run_once()
    assert report.blobs_deleted == 0, "a deleted version in its restore window keeps its blobs"
    assert await registry.stored() == before
    await registry.purge()
    report = await registry.gc.run_once()
    gone = before - await registry.stored()
    assert digest_of(only_a) in gone and digest_of(base) not in gone
    assert len(gone) == 2 and report.blobs_deleted == 2  # only_a and a's config
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": "acme/a"}).encode()
    assert report.bytes_freed == len(only_a) + len(config)
    assert await registry.read(digest_of(base)) == base
    assert await registry.read(digest_of(only_b)) == only_b
    registry.consistent()


async def test_grace_period_keeps_new_garbage(registry: Registry) -> None:
    layer = os.urandom(500)
    digest = await registry.push_image("acme/a", "v1", layer)
    await registry.delete("acme/a", digest)
    await registry.purge()
    report = await registry.gc.run_once(grace=3600)
    assert report.blobs_deleted == 0
    assert await registry.read(digest_of(layer)) == layer
    report = await registry.gc.run_once(grace=0)
    assert report.blobs_deleted == 2
    assert digest_of(layer) not in await registry.stored()


async def test_dry_run_changes_nothing_and_tells_what_a_run_does(registry: Registry) -> None:
    keep = await registry.push_image("acme/keep", "v1", os.urandom(100))
    drop = await registry.push_image("acme/drop", "v1", os.urandom(700), os.urandom(300))
    await registry.delete("acme/drop", drop)
    await registry.purge()
    orphan = os.urandom(50)
    upload = new_upload_id()
    await registry.store.start_upload(upload)
    await registry.store.append(upload, chunks(orphan), offset=0, max_size=10**6)
    await registry.store.commit(upload, Digest(digest_of(orphan)))  # bytes, no metadata
    tables = ("blobs", "blob_links", "unreferenced_blobs", "manifests", "manifest_refs")
    snapshot = {t: registry.rows(t) for t in tables}
    stored = await registry.stored()
    dry = await registry.gc.run_once(dry_run=True)
    assert (dry.blobs_deleted, dry.orphans_deleted) == (3, 1)
    assert dry.bytes_freed > 1000 and dry.orphan_bytes == 50
    assert {t: registry.rows(t) for t in tables} == snapshot
    assert await registry.stored() == stored
    real = await registry.gc.run_once()
    assert (real.blobs_deleted, real.orphans_deleted) == (3, 1)
    assert (real.bytes_freed, real.orphan_bytes) == (dry.bytes_freed, dry.orphan_bytes)
    assert len(await registry.stored()) == len(stored) - 4
    assert (await registry.manifests.get(RepositoryName("acme/keep"), "v1")).digest == keep
    registry.consistent()


async def test_children_referrers_and_listed_blobs_are_references(registry: Registry) -> None:
    """Untagged index children, a referrer of a live image and a blob unlinked from its
    repository while a manifest still lists it are never collected."""
    amd, arm, sig, shared = (os.urandom(400) for _ in range(4))
    child_amd = await registry.push_image("acme/multi", None, amd, shared)
    child_arm = await registry.push_image("acme/multi", None, arm, shared)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": p}
                for d, p in (
                    (child_amd, {"os": "linux", "architecture": "amd64"}),
                    (child_arm, {"os": "linux", "architecture": "arm64"}),
                )
            ],
        }
    ).encode()
    await registry.manifests.put(RepositoryName("acme/multi"), "latest", index, OCI_INDEX)
    await registry.push_image(
        "acme/multi",
        None,
        sig,
        subject={"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index)},
        artifactType="application/vnd.example.signature",
    )
    await registry.blobs.delete(RepositoryName("acme/multi"), Digest(digest_of(shared)))
    before = await registry.stored()
    report = await registry.gc.run_once()
    assert report.blobs_deleted == 0 and report.orphans_deleted == 0
    assert report.blobs_checked == 1 and report.in_use == 1  # the unlinked one, still listed
    assert await registry.stored() == before
    for data in (amd, arm, sig, shared):
        assert await registry.read(digest_of(data)) == data
    registry.consistent()


async def test_orphaned_bytes_go_after_the_grace_period(registry: Registry) -> None:
    data = os.urandom(2048)
    upload = new_upload_id()
    await registry.store.start_upload(upload)
    await registry.store.append(upload, chunks(data), offset=0, max_size=10**6)
    await registry.store.commit(upload, Digest(digest_of(data)))
    assert (await registry.gc.run_once(grace=3600)).orphans_deleted == 0
    report = await registry.gc.run_once(grace=0)
    assert (report.orphans_deleted, report.orphan_bytes) == (1, 2048)
    assert await registry.stored() == set()
    registry.consistent()


async def test_expired_upload_data_is_removed(registry: Registry) -> None:
    status = await registry.uploads.start(RepositoryName("acme/a"))
    await registry.uploads.append(
        RepositoryName("acme/a"), status.id, chunks(b"half a layer"), start=0, length=None
    )
    fresh = await registry.uploads.start(RepositoryName("acme/a"))
    registry.uploads.timeout = timedelta(seconds=0.5)
    await anyio.sleep(0.8)
    await registry.uploads.uploads.touch(fresh.id)
    path = registry.store.uploads / fresh.id / "data"
    os.utime(path)
    os.utime(path.parent)
    report = await registry.gc.run_once()
    assert report.uploads_removed == 1
    assert {u async for u, _ in registry.store.iter_uploads()} == {fresh.id}


async def test_an_interrupted_deletion_is_finished_by_the_next_run(registry: Registry) -> None:
    layer = os.urandom(900)
    digest = await registry.push_image("acme/a", "v1", layer)
    await registry.delete("acme/a", digest)
    await registry.purge()
    # A collector that committed its decision and died before touching the bytes.
    candidates = await registry.meta.gc.candidates(datetime.now(UTC), "", 100)
    claimed = await registry.meta.gc.claim(candidates, datetime.now(UTC), dry_run=False)
    assert len(claimed.deleting) == 2
    assert digest_of(layer) in await registry.stored()
    report = await registry.gc.run_once()
    assert report.recovered == 2 and report.bytes_freed >= 900
    assert digest_of(layer) not in await registry.stored()
    registry.consistent()


async def test_an_upload_of_bytes_being_deleted_waits_and_stores_them_again(
    registry: Registry,
) -> None:
    layer = os.urandom(1500)
    digest = await registry.push_image("acme/a", "v1", layer)
    await registry.delete("acme/a", digest)
    await registry.purge()
    candidates = await registry.meta.gc.candidates(datetime.now(UTC), "", 100)
    await registry.meta.gc.claim(candidates, datetime.now(UTC), dry_run=False)
    done = anyio.Event()

    async def push_again() -> None:
        await registry.push_blob("acme/b", layer)
        done.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(push_again)
        await anyio.sleep(0.5)
        assert not done.is_set(), "the upload must wait while the blob is being deleted"
        await registry.store.delete(Digest(digest_of(layer)))  # the collector goes on...
        await registry.meta.gc.forget(candidates)  # ...and finishes
    assert await registry.read(digest_of(layer)) == layer
    size = await registry.blobs.info(RepositoryName("acme/b"), Digest(digest_of(layer)))
    assert size.size == len(layer)
    registry.consistent()


async def test_concurrent_pushes_and_collections_lose_nothing(registry: Registry) -> None:
    """Pushes sharing base layers, deletions with purges, and a collector with no grace
    period, all at once for a few seconds: every image not deleted reads back whole."""
    bases = [os.urandom(700) for _ in range(3)]
    alive: dict[tuple[str, str], list[bytes]] = {}
    deadline = time.monotonic() + 4
    runs = 0

    async def pusher(n: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            repo = f"acme/r{n}-{i % 3}"
            own = os.urandom(300)
            try:
                digest = await registry.push_image(repo, None, bases[i % 3], own)
            except Unavailable:
                # With no grace period the collector may take a blob between an upload's pin
                # and its link: the push is refused (503, "push it again") and nothing is
                # lost; a client pushes again, as this one does.
                continue
            if i % 2:
                await registry.delete(repo, digest)
                await registry.purge()
            else:
                alive[(repo, digest)] = [bases[i % 3], own]
            i += 1

    async def collector() -> None:
        nonlocal runs
        while time.monotonic() < deadline:
            await registry.gc.run_once(grace=0)
            runs += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tasks:
        for n in range(3):
            tasks.start_soon(pusher, n)
        tasks.start_soon(collector)
    await registry.gc.run_once(grace=0)
    assert runs >= 2 and len(alive) >= 3
    for (repo, digest), layers in alive.items():
        got = await registry.manifests.get(RepositoryName(repo), digest)
        doc = json.loads(got.content)
        for layer, descriptor in zip(layers, doc["layers"], strict=True):
            info = await registry.blobs.info(RepositoryName(repo), Digest(descriptor["digest"]))
            assert info.size == len(layer)
            assert await registry.read(descriptor["digest"]) == layer
    registry.consistent()
