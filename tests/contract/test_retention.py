"""Retention on every SQL backend: the store's policies (package, owner default), the cleanup's
dry run and run through the service with a settable clock, the events it emits and the
restore of what it removed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from kit import digest_of

from cargobay.errors import ManifestBlobUnknown, ManifestChildUnknown
from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag
from cargobay.ports.accounts import Account, PackageAccess
from cargobay.ports.events import Action, Event
from cargobay.ports.registry import NewManifest
from cargobay.ports.retention import RetentionPolicy
from cargobay.services.events import EventBus
from cargobay.services.retention import RetentionService

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
APP = "acme/app"


async def put(
    meta: SqlMetadata,
    name: str,
    tag: str | None,
    *,
    children: Sequence[Digest] = (),
    subject: Digest | None = None,
) -> Digest:
    blob = digest_of(f"{name}{tag}{list(children)}{subject}".encode())
    if not children:
        await meta.blobs.link(RepositoryName(APP), blob, 10)
    content = json.dumps({"n": name, "c": list(children), "s": subject}).encode()
    await meta.manifests.put(
        RepositoryName(APP),
        NewManifest(
            digest=digest_of(content),
            media_type=OCI_INDEX if children else OCI_MANIFEST,
            content=content,
            subject=subject,
            artifact_type="application/x-sig" if subject else None,
            annotations={},
            blobs=() if children else (blob,),
            manifests=tuple(children),
            kind="index" if children else "image",
        ),
        Tag(tag) if tag else None,
    )
    return digest_of(content)


async def create_app(meta: SqlMetadata) -> tuple[Account, PackageAccess]:
    """The organization ``acme`` and its package ``APP``."""
    acme = await meta.accounts.create("acme", "Organization")
    package = await meta.packages.create(
        APP,
        owner_id=acme.id,
        visibility="private",
        inherit_access=False,
        source_repository_id=None,
        published_by_repository_id=None,
        admin_user_id=None,
    )
    return acme, package


async def test_the_cleanup_keeps_whole_images_and_removes_restorably(meta: SqlMetadata) -> None:
    acme, package = await create_app(meta)
    amd, arm = await put(meta, "amd", None), await put(meta, "arm", None)
    index = await put(meta, "index", "multi", children=[amd, arm])
    signature = await put(meta, "sig", None, subject=index)
    orphan = await put(meta, "orphan", None)
    old_tag = await put(meta, "old", "v0")
    new_tag = await put(meta, "new", "v9")

    clock = [datetime.now(UTC)]
    seen: list[Event] = []
    bus = EventBus()

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe(Action.VERSION_DELETED, record)
    service = RetentionService(
        None,
        meta.package_records,
        meta.accounts,
        meta.retention,
        protected_downloads=5000,
        events=bus,
        clock=lambda: clock[0],
    )
    policy = RetentionPolicy(untagged_days=10, keep_tags=1, tag_patterns=("multi",))
    await meta.retention.put(policy, owner_id=acme.id)
    assert await meta.retention.get(owner_id=acme.id) == policy
    assert await meta.retention.governed() == [package.id]

    # Today nothing untagged is old; only v0's version (its tag is not the newest) goes.
    report = await service.run(dry_run=True)
    assert [r.digest for r in report.removed[APP]] == [old_tag]

    # Sixty days on: the orphan goes too; the index keeps its platforms and its signature.
    clock[0] += timedelta(days=60)
    dry = await service.run(dry_run=True)
    assert {r.digest for r in dry.removed[APP]} == {old_tag, orphan}
    assert seen == []
    done = await service.run()
    assert done.removed[APP] == dry.removed[APP]
    assert {(e.action, e.digest) for e in seen} == {
        (Action.VERSION_DELETED, old_tag),
        (Action.VERSION_DELETED, orphan),
    }
    for kept in (amd, arm, index, signature, new_tag):
        assert await meta.manifests.get(RepositoryName(APP), kept) is not None
    for gone in (old_tag, orphan):
        assert await meta.manifests.get(RepositoryName(APP), gone) is None
    assert (await service.run(dry_run=True)).removed == {}

    # A package policy of its own wins over the owner's: no tag rule keeps every tag.
    await meta.retention.put(RetentionPolicy(untagged_days=10), package_id=package.id)
    record_ = await meta.package_records.by_id(package.id)
    assert record_ is not None
    assert (await service.effective(record_)).source == "package"

    # Restorable, with its tag.
    version = await meta.package_records.version_by_digest(package.id, old_tag)
    assert version is not None and version.deleted_at is not None
    await meta.package_records.restore_version(package.id, version.id)
    assert await meta.manifests.get(RepositoryName(APP), Tag("v0")) is not None

    # Dropping the index: its platforms and signature go with it on the next run. (The restored
    # v0 is the most recently tagged now: v9 is the tag that goes.)
    await meta.retention.clear(package_id=package.id)
    await meta.retention.put(RetentionPolicy(untagged_days=10, keep_tags=1), package_id=package.id)
    gone = {r.digest for r in (await service.run()).removed[APP]}
    assert gone == {index, amd, arm, signature, new_tag}


async def test_versions_pulled_recently_stay(meta: SqlMetadata) -> None:
    acme, _ = await create_app(meta)
    pulled, idle = await put(meta, "pulled", None), await put(meta, "idle", None)
    await meta.manifests.add_downloads({(APP, pulled): 1})
    service = RetentionService(
        None,
        meta.package_records,
        meta.accounts,
        meta.retention,
        protected_downloads=5000,
        clock=lambda: datetime.now(UTC) + timedelta(days=30),
    )
    await meta.retention.put(RetentionPolicy(untagged_days=10, pulled_days=45), owner_id=acme.id)
    assert [r.digest for r in (await service.run(dry_run=True)).removed[APP]] == [idle]
    await meta.retention.put(RetentionPolicy(untagged_days=10, pulled_days=20), owner_id=acme.id)
    removed = {r.digest for r in (await service.run()).removed[APP]}
    assert removed == {pulled, idle}


ROUNDS = 12


def blob_of(name: str, tag: str | None, children: Sequence[Digest] = ()) -> Digest:
    """The blob :func:`put` links for an image (none for an index)."""
    return digest_of(f"{name}{tag}{list(children)}{None}".encode())


async def test_a_cleanup_racing_pushes_removes_nothing_they_pushed_or_need(
    meta: SqlMetadata,
) -> None:
    """The cleanup runs again and again while pushes go on: untagged versions tagged by a push
    meanwhile, indexes with the untagged platforms they list, and the blobs of each, are never
    removed (not even once the removed versions are purged); the untagged orphans nobody took
    are."""
    _, package = await create_app(meta)
    orphans = [await put(meta, f"orphan{i}", None) for i in range(2 * ROUNDS)]
    # Every untagged version pushed before a run's start is a day old by its clock.
    service = RetentionService(
        None,
        meta.package_records,
        meta.accounts,
        meta.retention,
        protected_downloads=5000,
        clock=lambda: datetime.now(UTC) + timedelta(days=1),
    )
    await meta.retention.put(RetentionPolicy(untagged_days=1), package_id=package.id)
    kept: dict[str, Digest] = {}  # tag -> the version a push gave it
    needed: set[Digest] = set()  # the blobs of those versions
    runs = [0]
    # A cleanup starts as each push step ends and runs beside the next one (one run per step:
    # the pushes are never starved of the database).
    steps, stepped = anyio.create_memory_object_stream[int](ROUNDS)

    async def cleanups() -> None:
        async with stepped:
            async for _ in stepped:
                await service.run()
                runs[0] += 1

    async def pushes() -> None:
        for i in range(ROUNDS):
            # An orphan a cleanup may be removing right now, tagged (pushed again).
            kept[f"re{i}"] = await put(meta, f"orphan{2 * i}", f"re{i}")
            needed.add(blob_of(f"orphan{2 * i}", None))
            # A platform pushed untagged, then the index that lists it (as clients push them):
            # if a cleanup took the platform in between, the client pushes it again.
            for _ in range(50):
                child = await put(meta, f"child{i}", None)
                try:
                    kept[f"multi{i}"] = await put(meta, f"index{i}", f"multi{i}", children=[child])
                    break
                except (ManifestBlobUnknown, ManifestChildUnknown):
                    continue
            needed.add(blob_of(f"child{i}", None))
            await steps.send(i)
        await steps.aclose()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(cleanups)
        tasks.start_soon(pushes)
    assert runs[0] == ROUNDS
    await service.run()
    await meta.package_records.purge(datetime.now(UTC) + timedelta(seconds=1))

    assert len(kept) == 2 * ROUNDS
    for tag, digest in kept.items():
        found = await meta.manifests.get(RepositoryName(APP), Tag(tag))
        assert found is not None and found.digest == digest, tag
    for i in range(ROUNDS):
        assert await meta.manifests.get(RepositoryName(APP), digest_of_child(i)) is not None
    for blob in needed:
        assert await meta.blobs.linked_size(RepositoryName(APP), blob) is not None, blob
    for orphan in orphans[1::2]:
        assert await meta.manifests.get(RepositoryName(APP), orphan) is None


def digest_of_child(i: int) -> Digest:
    content = json.dumps({"n": f"child{i}", "c": [], "s": None}).encode()
    return digest_of(content)
