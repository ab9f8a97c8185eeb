"""The per-namespace usage counter and quotas on every SQL backend: the counter always equals
what the namespace stores (each blob once, plus manifests) through links, mounts, unlinks,
deletions and purges; a quota refuses what would pass it and writes nothing; racing links can't
jointly pass it; a recount repairs a counter that was made wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import sqlalchemy as sa
from kit import digest_of
from test_packages import create_package, push_image

from cargobay.errors import QuotaExceeded
from cargobay.metadata.schema import namespace_usage
from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.mediatypes import OCI_MANIFEST
from cargobay.oci.names import RepositoryName
from cargobay.ports.events import EventFilter
from cargobay.ports.registry import NewManifest

pytestmark = pytest.mark.anyio


async def used(meta: SqlMetadata, owner_id: int) -> int:
    row = await meta.quotas.get(owner_id)
    assert row is not None
    return row.used


async def check_counter(meta: SqlMetadata, owner_id: int) -> int:
    """The counter equals the stored figure summed from scratch."""
    counted = await used(meta, owner_id)
    assert counted == (await meta.usage.for_owner(owner_id)).stored
    return counted


def manifest_of(repo: str, blobs: list[str]) -> NewManifest:
    content = json.dumps({"image": [repo, blobs]}).encode()
    return NewManifest(
        digest=digest_of(content),
        media_type=OCI_MANIFEST,
        content=content,
        subject=None,
        artifact_type=None,
        annotations={},
        blobs=[digest_of(b.encode()) for b in blobs],
        manifests=(),
        kind="image",
        platform=None,
        description=None,
    )


async def test_the_counter_follows_links_mounts_unlinks_and_purges(meta: SqlMetadata) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    other = await meta.accounts.create("other", "Organization")
    await create_package(meta, "acme/app", acme.id)
    await create_package(meta, "acme/lib", acme.id)
    await create_package(meta, "other/x", other.id)
    assert await check_counter(meta, acme.id) == 0

    _, m1 = await push_image(meta, "acme/app", "v1", {"base": 1000, "one": 10})
    assert await check_counter(meta, acme.id) == 1010 + m1
    d2, m2 = await push_image(meta, "acme/lib", "v1", {"base": 1000, "two": 20})
    assert await check_counter(meta, acme.id) == 1030 + m1 + m2, "the shared base counts once"
    await push_image(meta, "other/x", "v1", {"base": 1000})
    assert await check_counter(meta, acme.id) == 1030 + m1 + m2, "another namespace's link"

    # A mount from another namespace adds the blob; one inside the namespace adds nothing.
    big = digest_of(b"big")
    await meta.blobs.link(RepositoryName("other/x"), big, 5000)
    assert await meta.blobs.mount(RepositoryName("acme/app"), big, RepositoryName("other/x"))
    assert await check_counter(meta, acme.id) == 6030 + m1 + m2
    assert await meta.blobs.mount(RepositoryName("acme/lib"), big, RepositoryName("acme/app"))
    assert await check_counter(meta, acme.id) == 6030 + m1 + m2

    # Unlinking from one package keeps it counted while another links it.
    assert await meta.blobs.unlink(RepositoryName("acme/app"), big)
    assert await check_counter(meta, acme.id) == 6030 + m1 + m2
    assert await meta.blobs.unlink(RepositoryName("acme/lib"), big)
    assert await check_counter(meta, acme.id) == 1030 + m1 + m2

    # A deleted version takes its space until it is purged; the purge frees it.
    assert await meta.manifests.delete(RepositoryName("acme/lib"), d2)
    assert await check_counter(meta, acme.id) == 1030 + m1 + m2
    await meta.package_records.purge(datetime.now(UTC) + timedelta(seconds=1))
    assert await check_counter(meta, acme.id) == 1010 + m1, "the base is still app's"
    assert set((await meta.quotas.recount()).values()) == {0}, "nothing to correct"


async def test_a_quota_refuses_what_would_pass_it_and_writes_nothing(meta: SqlMetadata) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    await create_package(meta, "acme/app", acme.id)
    await create_package(meta, "acme/lib", acme.id)
    await meta.blobs.link(RepositoryName("acme/app"), digest_of(b"base"), 600)
    await meta.quotas.set_quota(acme.id, 1000, None)

    with pytest.raises(QuotaExceeded) as refused:
        await meta.blobs.link(RepositoryName("acme/app"), digest_of(b"layer"), 500)
    assert (refused.value.used, refused.value.limit, refused.value.adds) == (600, 1000, 500)
    assert "namespace acme uses 600 B of its 1 kB quota; this push adds 500 B" in str(
        refused.value.message
    )
    assert await meta.blobs.linked_size(RepositoryName("acme/app"), digest_of(b"layer")) is None
    assert await check_counter(meta, acme.id) == 600

    # A blob the namespace has already costs nothing, even in another of its packages.
    await meta.blobs.link(RepositoryName("acme/lib"), digest_of(b"base"), 600)
    assert await check_counter(meta, acme.id) == 600
    await meta.blobs.link(RepositoryName("acme/app"), digest_of(b"layer"), 400)
    assert await check_counter(meta, acme.id) == 1000

    # A manifest's own bytes count too: at the limit, a new version is refused.
    version = manifest_of("acme/app", ["base"])
    with pytest.raises(QuotaExceeded):
        await meta.manifests.put(RepositoryName("acme/app"), version, None)
    assert await meta.manifests.get(RepositoryName("acme/app"), version.digest) is None
    assert await check_counter(meta, acme.id) == 1000
    await meta.quotas.set_quota(acme.id, None, None)
    await meta.manifests.put(RepositoryName("acme/app"), version, None)
    assert await check_counter(meta, acme.id) == 1000 + len(version.content)


async def test_racing_links_cannot_jointly_pass_the_quota(meta: SqlMetadata) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    for n in range(8):
        await create_package(meta, f"acme/p{n}", acme.id)
    await meta.quotas.set_quota(acme.id, 3000, None)
    outcomes: list[str] = []

    async def push(n: int) -> None:
        try:
            await meta.blobs.link(RepositoryName(f"acme/p{n}"), digest_of(f"b{n}".encode()), 1000)
            outcomes.append("linked")
        except QuotaExceeded:
            outcomes.append("refused")

    async with anyio.create_task_group() as tasks:
        for n in range(8):
            tasks.start_soon(push, n)
    assert sorted(outcomes) == ["linked"] * 3 + ["refused"] * 5
    assert await check_counter(meta, acme.id) == 3000


async def test_crossing_the_warning_threshold_is_an_event(meta: SqlMetadata) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    await create_package(meta, "acme/app", acme.id)
    await meta.quotas.set_quota(acme.id, 1000, 80)
    await meta.blobs.link(RepositoryName("acme/app"), digest_of(b"a"), 500)
    where = EventFilter(actions=("registry.quota_warning",))
    assert await meta.events.search(where, limit=10, newest_first=True) == []
    await meta.blobs.link(RepositoryName("acme/app"), digest_of(b"b"), 400)
    found = await meta.events.search(where, limit=10, newest_first=True)
    assert len(found) == 1 and found[0].owner_id == acme.id
    assert found[0].data["used"] == 900
    await meta.blobs.link(RepositoryName("acme/app"), digest_of(b"c"), 50)
    assert len(await meta.events.search(where, limit=10, newest_first=True)) == 1, "once"


async def test_a_recount_repairs_a_wrong_counter(meta: SqlMetadata) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    await create_package(meta, "acme/app", acme.id)
    _, size = await push_image(meta, "acme/app", "v1", {"base": 1000})
    with meta.engine.begin() as c:
        c.execute(sa.update(namespace_usage).values(used=12345))
    assert await used(meta, acme.id) == 12345
    assert await meta.quotas.recount([acme.id]) == {acme.id: 1000 + size - 12345}
    assert await check_counter(meta, acme.id) == 1000 + size
