"""The metadata store contract (see ports/registry.py), run on every SQL backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa
from kit import digest_of

from cargobay.errors import ManifestBlobUnknown, ManifestChildUnknown, TooManyUploads
from cargobay.metadata.engine import make_engine, migrate, pending_migrations
from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag
from cargobay.ports.registry import NewManifest

pytestmark = pytest.mark.anyio
T = TypeVar("T")
REPO = RepositoryName("octo/app")


async def test_a_new_database_is_migrated_to_the_latest_schema(engine: sa.Engine) -> None:
    assert pending_migrations(engine)
    migrate(engine)
    assert not pending_migrations(engine)


def manifest(
    content: bytes,
    blobs: tuple[Digest, ...] = (),
    children: tuple[Digest, ...] = (),
    subject: Digest | None = None,
    artifact_type: str | None = None,
) -> NewManifest:
    return NewManifest(
        digest=digest_of(content),
        media_type="application/vnd.oci.image.manifest.v1+json",
        content=content,
        subject=subject,
        artifact_type=artifact_type,
        annotations={"k": "v"} if subject else {},
        blobs=blobs,
        manifests=children,
    )


async def test_blob_links_are_per_repository(meta: SqlMetadata) -> None:
    blob = digest_of(b"layer")
    assert await meta.blobs.linked_size(REPO, blob) is None
    await meta.blobs.link(REPO, blob, 5)
    await meta.blobs.link(REPO, blob, 5)  # idempotent
    assert await meta.blobs.linked_size(REPO, blob) == 5
    assert await meta.blobs.linked_size(RepositoryName("other"), blob) is None
    assert await meta.repositories.exists(REPO)
    assert await meta.blobs.unlink(REPO, blob) is True
    assert await meta.blobs.unlink(REPO, blob) is False
    assert await meta.blobs.linked_size(REPO, blob) is None


async def test_manifest_put_get_by_tag_and_digest(meta: SqlMetadata) -> None:
    blob = digest_of(b"config")
    await meta.blobs.link(REPO, blob, 6)
    m = manifest(b'{"m": 1}', blobs=(blob,))
    await meta.manifests.put(REPO, m, Tag("v1"))
    for ref in (Tag("v1"), m.digest):
        got = await meta.manifests.get(REPO, ref)
        assert got is not None
        assert got.content == b'{"m": 1}' and got.digest == m.digest and got.size == 8
    assert await meta.manifests.get(RepositoryName("other"), Tag("v1")) is None


async def test_manifest_with_missing_blob_changes_nothing(meta: SqlMetadata) -> None:
    good = manifest(b"good")
    await meta.manifests.put(REPO, good, Tag("latest"))
    with pytest.raises(ManifestBlobUnknown):
        await meta.manifests.put(REPO, manifest(b"bad", blobs=(digest_of(b"nope"),)), Tag("latest"))
    with pytest.raises(ManifestChildUnknown):
        await meta.manifests.put(REPO, manifest(b"idx", children=(digest_of(b"x"),)), Tag("latest"))
    got = await meta.manifests.get(REPO, Tag("latest"))
    assert got is not None and got.digest == good.digest
    assert await meta.manifests.get(REPO, digest_of(b"bad")) is None


async def test_tags_move_and_delete(meta: SqlMetadata) -> None:
    first, second = manifest(b"first"), manifest(b"second")
    await meta.manifests.put(REPO, first, Tag("a"))
    await meta.manifests.put(REPO, first, Tag("b"))
    await meta.manifests.put(REPO, second, Tag("b"))
    got = await meta.manifests.get(REPO, Tag("b"))
    assert got is not None and got.digest == second.digest
    assert await meta.manifests.delete_tag(REPO, Tag("b")) is True
    assert await meta.manifests.delete_tag(REPO, Tag("b")) is False
    assert await meta.manifests.get(REPO, second.digest) is not None
    assert await meta.manifests.delete(REPO, first.digest) is True
    assert await meta.manifests.list_tags(REPO, last=None, limit=10) == []
    assert await meta.manifests.delete(REPO, first.digest) is False


async def test_tag_listing_is_lexical_and_paginated(meta: SqlMetadata) -> None:
    m = manifest(b"m")
    names = ["b", "a", "C", "a1", "10", "9"]
    for name in names:
        await meta.manifests.put(REPO, m, Tag(name))
    assert await meta.manifests.list_tags(REPO, last=None, limit=100) == sorted(names)
    assert await meta.manifests.list_tags(REPO, last="C", limit=2) == ["a", "a1"]
    assert await meta.manifests.list_tags(RepositoryName("nope"), last=None, limit=5) is None


async def test_catalog(meta: SqlMetadata) -> None:
    for name in ("b/x", "a", "c"):
        await meta.manifests.put(RepositoryName(name), manifest(name.encode()), None)
    assert await meta.repositories.list_names(last=None, limit=10) == ["a", "b/x", "c"]
    assert await meta.repositories.list_names(last="a", limit=1) == ["b/x"]


async def test_referrers_and_filter(meta: SqlMetadata) -> None:
    subject = digest_of(b"subject")
    sig = manifest(b"sig", subject=subject, artifact_type="application/x.sig")
    sbom = manifest(b"sbom", subject=subject, artifact_type="application/x.sbom")
    await meta.manifests.put(REPO, sig, None)
    await meta.manifests.put(REPO, sbom, None)
    found = await meta.manifests.referrers(REPO, subject, None)
    assert {r.digest for r in found} == {sig.digest, sbom.digest}
    assert found[0].annotations == {"k": "v"}
    only = await meta.manifests.referrers(REPO, subject, "application/x.sbom")
    assert [r.digest for r in only] == [sbom.digest]
    assert await meta.manifests.referrers(REPO, digest_of(b"other"), None) == []


async def test_uploads_expire(meta: SqlMetadata) -> None:
    upload = await meta.uploads.create("a" * 32, REPO)
    got = await meta.uploads.get("a" * 32)
    assert got is not None and got.repository == REPO
    assert await meta.uploads.expired(datetime.now(UTC) - timedelta(minutes=1)) == []
    assert await meta.uploads.expired(datetime.now(UTC) + timedelta(seconds=1)) == [upload.id]
    await meta.uploads.delete(upload.id)
    assert await meta.uploads.get(upload.id) is None


async def test_open_uploads_are_bounded_per_owner(meta: SqlMetadata) -> None:
    live_since = datetime.now(UTC) - timedelta(minutes=10)
    for n in range(3):
        await meta.uploads.create(f"{n:032x}", REPO, owner="user:1", limit=3, live_since=live_since)
    with pytest.raises(TooManyUploads) as refused:
        await meta.uploads.create("f" * 32, REPO, owner="user:1", limit=3, live_since=live_since)
    assert 1 <= refused.value.retry_after <= 601  # when the oldest of them expires
    assert await meta.uploads.get("f" * 32) is None
    # Another owner has its own count; a finished session frees its slot.
    await meta.uploads.create("e" * 32, REPO, owner="user:2", limit=3, live_since=live_since)
    await meta.uploads.delete(f"{0:032x}")
    await meta.uploads.create("f" * 32, REPO, owner="user:1", limit=3, live_since=live_since)
    # Sessions idle since before ``live_since`` have expired: they don't count.
    later = datetime.now(UTC) + timedelta(seconds=1)
    await meta.uploads.create("d" * 32, REPO, owner="user:1", limit=1, live_since=later)


async def test_reads_see_every_commit_from_any_connection(database_url: str) -> None:
    """Hot-path reads may be cached, but a new request never sees less than the last commit
    made by another store instance (another worker process shares the database this way)."""
    url = database_url
    engine = make_engine(url)
    migrate(engine)
    reader, writer = SqlMetadata(engine), SqlMetadata(make_engine(url))

    async def request(coro: Awaitable[T]) -> T:  # each request runs in its own task
        return await asyncio.create_task(coro)  # type: ignore[arg-type]

    try:
        first, second = manifest(b"first"), manifest(b"second")
        await writer.manifests.put(REPO, first, Tag("t"))
        for _ in range(2):  # the second read may come from the cache
            got = await request(reader.manifests.get(REPO, Tag("t")))
            assert got is not None and got.digest == first.digest
        await writer.manifests.put(REPO, second, Tag("t"))
        got = await request(reader.manifests.get(REPO, Tag("t")))
        assert got is not None and got.digest == second.digest
        await writer.manifests.delete(REPO, second.digest)
        assert await request(reader.manifests.get(REPO, Tag("t"))) is None
        blob = digest_of(b"blob")
        assert await request(reader.blobs.linked_size(REPO, blob)) is None
        await writer.blobs.link(REPO, blob, 4)
        assert await request(reader.blobs.linked_size(REPO, blob)) == 4
    finally:
        reader.close()
        writer.close()


async def test_a_request_sees_its_own_writes(meta: SqlMetadata) -> None:
    blob = digest_of(b"own")
    assert await meta.blobs.linked_size(REPO, blob) is None
    await meta.blobs.link(REPO, blob, 3)
    assert await meta.blobs.linked_size(REPO, blob) == 3


def test_migrations_produce_exactly_the_schema(database_url: str) -> None:
    """The Alembic history and the table definitions agree (no autogenerate diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from cargobay.metadata.schema import metadata

    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()
