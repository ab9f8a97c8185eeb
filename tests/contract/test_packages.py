"""The package store (``SqlPackageStore``: packages and versions as people manage them) and the
manifest store's soft delete, on every SQL backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from kit import digest_of

from cargobay.errors import Conflict, VersionInUse
from cargobay.metadata.packages import SqlPackageStore
from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag
from cargobay.ports.packages import PackageRecord, VersionRecord
from cargobay.ports.registry import NewManifest

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
APP = RepositoryName("acme/app")


@pytest.fixture
def store(meta: SqlMetadata) -> SqlPackageStore:
    return meta.package_records


async def create_package(
    meta: SqlMetadata, name: str, owner_id: int, visibility: str = "private"
) -> int:
    created = await meta.packages.create(
        name,
        owner_id=owner_id,
        visibility=visibility,
        inherit_access=False,
        source_repository_id=None,
        published_by_repository_id=None,
        admin_user_id=None,
    )
    return created.id


async def push_image(
    meta: SqlMetadata,
    repo: str,
    tag: str | None,
    blobs: dict[str, int],
    *,
    platform: str | None = None,
    description: str | None = None,
) -> tuple[Digest, int]:
    """Link ``blobs`` (name -> size; digest of the name) in ``repo`` and push an image manifest
    referencing them; returns its digest and its length in bytes."""
    digests = []
    for blob, size in blobs.items():
        digest = digest_of(blob.encode())
        await meta.blobs.link(RepositoryName(repo), digest, size)
        digests.append(digest)
    content = json.dumps({"image": [repo, sorted(blobs), platform]}).encode()
    await meta.manifests.put(
        RepositoryName(repo),
        NewManifest(
            digest=digest_of(content),
            media_type=OCI_MANIFEST,
            content=content,
            subject=None,
            artifact_type=None,
            annotations={},
            blobs=digests,
            manifests=(),
            kind="image",
            platform=platform,
            description=description,
        ),
        Tag(tag) if tag else None,
    )
    return digest_of(content), len(content)


async def push_index(
    meta: SqlMetadata, repo: str, tag: str | None, children: Sequence[Digest]
) -> tuple[Digest, int]:
    content = json.dumps({"index": [repo, list(children)]}).encode()
    await meta.manifests.put(
        RepositoryName(repo),
        NewManifest(
            digest=digest_of(content),
            media_type=OCI_INDEX,
            content=content,
            subject=None,
            artifact_type=None,
            annotations={},
            blobs=(),
            manifests=children,
            kind="index",
        ),
        Tag(tag) if tag else None,
    )
    return digest_of(content), len(content)


async def version(store: SqlPackageStore, package_id: int, digest: Digest) -> VersionRecord:
    found = await store.version_by_digest(package_id, digest)
    assert found is not None, digest
    return found


async def ids_of(store: SqlPackageStore, package_id: int, *digests: Digest) -> list[int]:
    return [(await version(store, package_id, d)).id for d in digests]


async def active(store: SqlPackageStore, package_id: int) -> set[Digest]:
    found, _ = await store.versions(package_id, deleted=False, offset=0, limit=100)
    return {v.digest for v in found}


async def pullable(meta: SqlMetadata, repo: str, reference: str) -> bool:
    ref = Digest(reference) if ":" in reference else Tag(reference)
    return await meta.manifests.get(RepositoryName(repo), ref) is not None


# -- packages -------------------------------------------------------------------------------------


async def test_get_by_id_for_owner_and_update(meta: SqlMetadata, store: SqlPackageStore) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    octo = await meta.accounts.create("octo", "User")
    names = ["acme/b", "acme/a/z", "acme/a", "acme/a-z"]
    ids = {n: await create_package(meta, n, acme.id) for n in names}
    await create_package(meta, "octo/tool", octo.id)
    await meta.package_records.update(ids["acme/b"], visibility="public")
    await push_image(meta, "acme/a/z", "v1", {"config": 10})
    await push_image(meta, "acme/a/z", "v2", {"config": 10, "layer": 99})

    got = await store.get("acme/a/z")
    assert isinstance(got, PackageRecord)
    assert (got.id, got.name, got.package_name) == (ids["acme/a/z"], "acme/a/z", "a/z")
    assert (got.owner_id, got.owner_login, got.owner_type) == (acme.id, "acme", "Organization")
    assert got.visibility == "private" and got.version_count == 2 and got.deleted_at is None
    assert got.created_at.tzinfo is not None and got.updated_at >= got.created_at
    assert await store.by_id(got.id) == got
    assert await store.get("acme/nope") is None
    assert await store.get_deleted("acme/a/z") is None  # not deleted
    assert await store.by_id(10_000) is None

    # By name, byte for byte ("-" < "/" < letters), whatever the database's collation.
    listed = await store.for_owner(acme.id)
    assert [p.name for p in listed] == ["acme/a", "acme/a-z", "acme/a/z", "acme/b"]
    assert [p.name for p in await store.for_owner(acme.id, "public")] == ["acme/b"]
    assert [p.name for p in await store.for_owner(octo.id)] == ["octo/tool"]
    assert await store.for_owner(octo.id, "internal") == []

    # update sets columns.
    source = await meta.accounts.create_source_repository(acme.id, "src", True)
    await store.update(
        ids["acme/a"], visibility="internal", source_repository_id=source, inherit_access=True
    )
    got = await store.by_id(ids["acme/a"])
    assert got is not None
    assert (got.visibility, got.inherit_access, got.repository) == ("internal", True, "acme/src")
    assert got.repository_private and got.repository_owner_id == acme.id


async def test_delete_frees_the_name_and_restore_conflicts_when_it_was_reused(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    old_id = await create_package(meta, APP, acme.id)
    digest, _ = await push_image(meta, APP, "v1", {"config": 10})

    await store.delete(old_id)
    assert await store.get(APP) is None
    assert await store.for_owner(acme.id) == []
    assert not await pullable(meta, APP, "v1") and not await pullable(meta, APP, digest)
    deleted = await store.get_deleted(APP)
    assert deleted is not None and deleted.id == old_id
    assert deleted.name == APP and deleted.package_name == "app"  # the name it had
    assert deleted.deleted_at is not None and deleted.version_count == 1
    assert await store.by_id(old_id) == deleted
    await store.delete(old_id)  # deleting again changes nothing
    assert await store.get_deleted(APP) == deleted

    await store.restore(old_id)
    restored = await store.get(APP)
    assert restored is not None and restored.id == old_id and restored.deleted_at is None
    assert await store.get_deleted(APP) is None
    assert await pullable(meta, APP, "v1")

    # Deleted again, and the name taken by a new package: restoring the old one is a Conflict.
    await store.delete(old_id)
    new_id = await create_package(meta, APP, acme.id)
    assert new_id != old_id
    await push_image(meta, APP, "v1", {"other": 5})
    with pytest.raises(Conflict):
        await store.restore(old_id)
    current = await store.get(APP)
    assert current is not None and current.id == new_id
    still = await store.get_deleted(APP)
    assert still is not None and still.id == old_id

    # get_deleted: the most recently deleted package of that name.
    await asyncio.sleep(0.01)
    await store.delete(new_id)
    newest = await store.get_deleted(APP)
    assert newest is not None and newest.id == new_id
    await store.restore(old_id)  # the name is free again
    back = await store.get(APP)
    assert back is not None and back.id == old_id


# -- versions -------------------------------------------------------------------------------------


async def test_versions_are_paged_newest_first_with_a_state_filter(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, APP, acme.id)
    pushed = [(await push_image(meta, APP, f"t{i}", {f"c{i}": i + 1}))[0] for i in range(5)]
    await _tag(meta, APP, pushed[0], "a-first")  # a second tag on the oldest version
    newest_first = pushed[::-1]

    seen: list[Digest] = []
    for offset in (0, 2, 4):
        page, total = await store.versions(package_id, deleted=False, offset=offset, limit=2)
        assert total == 5
        seen += [v.digest for v in page]
    assert seen == newest_first
    page, total = await store.versions(package_id, deleted=False, offset=10, limit=2)
    assert (page, total) == ([], 5)
    oldest = await version(store, package_id, pushed[0])
    assert oldest.tags == ("a-first", "t0") and oldest.deleted_at is None
    assert await store.version(package_id, oldest.id) == oldest

    await store.delete_versions(package_id, await ids_of(store, package_id, pushed[1], pushed[3]))
    page, total = await store.versions(package_id, deleted=False, offset=0, limit=10)
    assert total == 3 and [v.digest for v in page] == [pushed[4], pushed[2], pushed[0]]
    page, total = await store.versions(package_id, deleted=True, offset=0, limit=10)
    assert total == 2 and [v.digest for v in page] == [pushed[3], pushed[1]]
    assert all(v.deleted_at is not None for v in page)
    assert [v.tags for v in page] == [("t3",), ("t1",)]  # the tags they had
    assert (await store.by_id(package_id)).version_count == 3  # type: ignore[union-attr]
    other = await create_package(meta, "acme/other", acme.id)
    assert await store.version(other, oldest.id) is None
    assert await store.version_by_digest(other, pushed[0]) is None


async def _tag(meta: SqlMetadata, repo: str, digest: Digest, tag: str) -> None:
    """Point ``tag`` at the existing manifest ``digest`` (pushed again under that tag)."""
    got = await meta.manifests.get(RepositoryName(repo), digest)
    assert got is not None
    await meta.manifests.put(
        RepositoryName(repo),
        NewManifest(
            digest=digest,
            media_type=got.media_type,
            content=got.content,
            subject=None,
            artifact_type=None,
            annotations={},
            blobs=(),
            manifests=(),
        ),
        Tag(tag),
    )


async def test_version_sizes_count_manifest_blobs_and_children(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, APP, acme.id)
    amd, amd_len = await push_image(
        meta, APP, None, {"cfg-amd": 100, "layer-amd": 2000}, platform="linux/amd64"
    )
    arm, arm_len = await push_image(
        meta, APP, None, {"cfg-arm": 300, "layer-arm": 4000}, platform="linux/arm64"
    )
    index, index_len = await push_index(meta, APP, "multi", [amd, arm])

    assert (await version(store, package_id, amd)).size == amd_len + 2100
    assert (await version(store, package_id, arm)).size == arm_len + 4300
    top = await version(store, package_id, index)
    assert top.size == index_len + amd_len + 2100 + arm_len + 4300
    assert (top.kind, top.media_type, top.tags) == ("index", OCI_INDEX, ("multi",))
    child = await version(store, package_id, amd)
    assert child.is_child and child.platform == "linux/amd64" and child.tags == ()
    # A blob linked in another package with another size does not count here.
    await create_package(meta, "acme/other", acme.id)
    await meta.blobs.link(RepositoryName("acme/other"), digest_of(b"layer-amd"), 1)
    assert (await version(store, package_id, amd)).size == amd_len + 2100


async def test_delete_versions_takes_index_children_unless_shared(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, APP, acme.id)
    a, _ = await push_image(meta, APP, None, {"a": 1}, platform="linux/amd64")
    b, _ = await push_image(meta, APP, None, {"b": 1}, platform="linux/arm64")
    c, _ = await push_image(meta, APP, "c-tag", {"c": 1}, platform="linux/s390x")
    first, _ = await push_index(meta, APP, "first", [a, b])
    second, _ = await push_index(meta, APP, "second", [b, c])
    id_a, id_b, id_c, id_first, id_second = await ids_of(store, package_id, a, b, c, first, second)

    # The index takes its own child; the child it shares with an active index stays.
    deleted = await store.delete_versions(package_id, [id_first])
    assert sorted(deleted) == sorted([id_first, id_a])
    assert await active(store, package_id) == {b, c, second}
    assert not await pullable(meta, APP, "first") and not await pullable(meta, APP, a)
    assert await pullable(meta, APP, b)
    assert await store.delete_versions(package_id, [id_first]) == []  # already deleted

    # A child of an active index can't go alone: VersionInUse, and nothing changes.
    for alone in ([id_c], [id_b], [id_b, id_c]):
        with pytest.raises(VersionInUse):
            await store.delete_versions(package_id, alone)
    assert await active(store, package_id) == {b, c, second}
    assert await pullable(meta, APP, "c-tag")

    # Together with that index it can.
    deleted = await store.delete_versions(package_id, [id_second, id_c])
    assert sorted(deleted) == sorted([id_second, id_b, id_c])
    assert await active(store, package_id) == set()
    assert await meta.manifests.list_tags(APP, last=None, limit=10) == []


async def test_manifest_store_delete_is_a_soft_delete_with_the_same_rules(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, APP, acme.id)
    a, _ = await push_image(meta, APP, "a", {"a": 1})
    b, _ = await push_image(meta, APP, None, {"b": 1})
    index, _ = await push_index(meta, APP, "multi", [a, b])

    with pytest.raises(VersionInUse):
        await meta.manifests.delete(APP, a)
    assert await pullable(meta, APP, "a")
    assert await meta.manifests.delete(APP, index) is True
    assert await meta.manifests.delete(APP, index) is False
    assert await active(store, package_id) == set()  # its children went with it
    gone = await version(store, package_id, a)
    assert gone.deleted_at is not None and gone.tags == ("a",)
    assert await meta.manifests.list_tags(APP, last=None, limit=10) == []
    assert await meta.manifests.delete(RepositoryName("acme/nope"), a) is False

    # Pushing a deleted version again makes it active again.
    await push_image(meta, APP, "b-again", {"b": 1})
    assert await active(store, package_id) == {b}
    assert await pullable(meta, APP, "b-again")
    # The index, restored, brings back its other child and its tags.
    await store.restore_version(package_id, (await version(store, package_id, index)).id)
    assert await active(store, package_id) == {a, b, index}
    assert await pullable(meta, APP, "multi") and await pullable(meta, APP, "a")


async def test_restore_version_restores_free_tags_and_what_was_deleted_with_it(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, APP, acme.id)
    a, _ = await push_image(meta, APP, "a", {"a": 1})
    b, _ = await push_image(meta, APP, None, {"b": 1})
    index, _ = await push_index(meta, APP, "multi", [a, b])
    x, _ = await push_image(meta, APP, "latest", {"x": 1})
    x_tagged, _ = await push_image(meta, APP, None, {"y": 1})
    await _tag(meta, APP, x, "keep")
    id_a, id_b, id_index, id_x = await ids_of(store, package_id, a, b, index, x)

    await store.delete_versions(package_id, [id_index])
    await store.delete_versions(package_id, [id_x])
    await _tag(meta, APP, x_tagged, "latest")  # "latest" is taken while x is deleted

    restored = await store.restore_version(package_id, id_index)
    assert sorted(restored) == sorted([id_index, id_a, id_b])
    assert await pullable(meta, APP, "multi") and await pullable(meta, APP, "a")
    restored_a = await version(store, package_id, a)
    assert restored_a.deleted_at is None and restored_a.tags == ("a",)

    assert await store.restore_version(package_id, id_x) == [id_x]
    again = await version(store, package_id, x)
    assert again.deleted_at is None and again.tags == ("keep",)  # "latest" was not free
    latest = await meta.manifests.get(APP, Tag("latest"))
    assert latest is not None and latest.digest == x_tagged
    assert await store.restore_version(package_id, id_x) == []  # not deleted: nothing to do

    # An active index never lists a deleted manifest: restoring an index restores its
    # children, however they were deleted since.
    single = "acme/single"
    single_id = await create_package(meta, single, acme.id)
    c, _ = await push_image(meta, single, None, {"c": 1})
    d, _ = await push_image(meta, single, None, {"d": 1})
    index2, _ = await push_index(meta, single, "multi", [c, d])
    id_c, id_index2 = await ids_of(store, single_id, c, index2)
    await store.delete_versions(single_id, [id_index2])  # takes c and d
    assert await store.restore_version(single_id, id_c) == [id_c]  # c alone
    assert await active(store, single_id) == {c}
    await store.delete_versions(single_id, [id_c])  # c alone again
    await store.restore_version(single_id, id_index2)
    assert await active(store, single_id) == {c, d, index2}
    assert await pullable(meta, single, c) and await pullable(meta, single, d)


# -- downloads and grants -------------------------------------------------------------------------


async def test_downloads_add_up_per_version(meta: SqlMetadata, store: SqlPackageStore) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, APP, acme.id)
    other_id = await create_package(meta, "acme/other", acme.id)
    a, _ = await push_image(meta, APP, "a", {"a": 1})
    b, _ = await push_image(meta, APP, "b", {"b": 1})
    await push_image(meta, "acme/other", "a", {"a": 1})
    assert await store.max_downloads(package_id) == 0

    await meta.manifests.add_downloads({(APP, a): 3, (APP, b): 10, ("acme/nope", a): 7})
    await meta.manifests.add_downloads({(APP, a): 2})
    await meta.manifests.add_downloads({})
    assert (await version(store, package_id, a)).download_count == 5
    assert (await version(store, package_id, b)).download_count == 10
    assert await store.max_downloads(package_id) == 10
    package = await store.by_id(package_id)
    assert package is not None and package.download_count == 15
    assert await store.max_downloads(other_id) == 0  # same digest, another package
    assert await store.max_downloads(10_000) == 0


async def test_grants_grant_and_revoke(meta: SqlMetadata, store: SqlPackageStore) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    mona = await meta.accounts.create("mona", "User")
    team = await meta.accounts.create_team(acme.id, "devs")
    source = await meta.accounts.create_source_repository(acme.id, "app", False)
    package_id = await create_package(meta, APP, acme.id)
    other_id = await create_package(meta, "acme/other", acme.id)
    assert await store.grants(package_id) == []

    await store.grant(package_id, "user", mona.id, "read")
    await store.grant(package_id, "user", mona.id, "admin")  # replaces the role
    await store.grant(package_id, "team", team, "write")
    await store.grant(package_id, "source_repository", source, "read")
    await store.grant(other_id, "user", mona.id, "write")
    grants = await store.grants(package_id)
    assert [(g.grantee_type, g.grantee_id, g.grantee, g.role) for g in grants] == [
        ("source_repository", source, "acme/app", "read"),
        ("team", team, "acme/devs", "write"),
        ("user", mona.id, "mona", "admin"),
    ]
    assert await store.revoke(package_id, "team", team) is True
    assert await store.revoke(package_id, "team", team) is False
    assert [g.grantee_type for g in await store.grants(package_id)] == [
        "source_repository",
        "user",
    ]
    assert [g.role for g in await store.grants(other_id)] == ["write"]


# -- purge ----------------------------------------------------------------------------------------


async def test_purge_removes_what_was_deleted_before_the_cutoff(
    meta: SqlMetadata, store: SqlPackageStore
) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    mona = await meta.accounts.create("mona", "User")
    gone_id = await create_package(meta, "acme/gone", acme.id)
    keep_id = await create_package(meta, "acme/keep", acme.id)
    late_id = await create_package(meta, "acme/late", acme.id)
    await push_image(meta, "acme/gone", "v1", {"gone-only": 10, "shared-across": 20})
    await store.grant(gone_id, "user", mona.id, "read")
    await push_image(meta, "acme/keep", "v1", {"shared-across": 20, "keep": 5})
    old, _ = await push_image(meta, "acme/keep", "old", {"old-only": 7, "shared-within": 8})
    await push_image(meta, "acme/keep", "current", {"shared-within": 8, "current": 9})
    newer, _ = await push_image(meta, "acme/keep", "newer", {"newer-only": 11})
    await push_image(meta, "acme/late", "v1", {"late-only": 12})

    await store.delete(gone_id)
    await store.delete_versions(keep_id, await ids_of(store, keep_id, old))
    await asyncio.sleep(0.05)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await store.delete_versions(keep_id, await ids_of(store, keep_id, newer))
    await store.delete(late_id)

    purged = await store.purge(cutoff)
    assert (purged.packages, purged.versions) == (1, 1)
    assert sorted(purged.unreferenced) == sorted([digest_of(b"gone-only"), digest_of(b"old-only")])
    assert sorted(await store.unreferenced()) == sorted(purged.unreferenced)
    # The package deleted before the cutoff is gone for good, with its grants.
    assert await store.by_id(gone_id) is None and await store.get_deleted("acme/gone") is None
    assert await store.grants(gone_id) == []
    # The version deleted before the cutoff is gone, and its own blob unlinked; blobs other
    # versions still use stay linked.
    keep = RepositoryName("acme/keep")
    assert await store.version_by_digest(keep_id, old) is None
    assert await meta.blobs.linked_size(keep, digest_of(b"old-only")) is None
    assert await meta.blobs.linked_size(keep, digest_of(b"shared-within")) == 8
    assert await meta.blobs.linked_size(keep, digest_of(b"shared-across")) == 20
    # What was deleted after the cutoff is untouched, and can still be restored.
    late_version = await version(store, keep_id, newer)
    assert late_version.deleted_at is not None
    assert await meta.blobs.linked_size(keep, digest_of(b"newer-only")) == 11
    late = await store.get_deleted("acme/late")
    assert late is not None and late.id == late_id
    await store.restore(late_id)
    await store.restore_version(keep_id, late_version.id)
    assert await pullable(meta, "acme/late", "v1") and await pullable(meta, keep, "newer")
    assert await pullable(meta, keep, "current")

    # Purging again finds nothing new.
    again = await store.purge(cutoff)
    assert (again.packages, again.versions, again.unreferenced) == (0, 0, ())
    later = await store.purge(datetime.now(UTC) + timedelta(seconds=1))
    assert (later.packages, later.versions) == (0, 0)
