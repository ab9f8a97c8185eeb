"""Storage usage of packages and namespaces on every SQL backend: stored (each blob once) and
as pushed (each version's blobs counted per version), shared layers, deleted versions."""

from __future__ import annotations

import pytest
from test_packages import create_package, push_image

from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.names import RepositoryName

pytestmark = pytest.mark.anyio


async def test_stored_counts_each_blob_once_as_pushed_each_version(meta: SqlMetadata) -> None:
    acme = await meta.accounts.create("acme", "Organization")
    other = await meta.accounts.create("other", "Organization")
    app = await create_package(meta, "acme/app", acme.id)
    await create_package(meta, "acme/lib", acme.id)
    await create_package(meta, "other/x", other.id)
    _, m1 = await push_image(meta, "acme/app", "v1", {"base": 1000, "one": 10})
    _, m2 = await push_image(meta, "acme/app", "v2", {"base": 1000, "two": 20})
    d3, m3 = await push_image(meta, "acme/lib", "v1", {"base": 1000, "three": 300})
    await push_image(meta, "other/x", "v1", {"base": 1000, "big": 5000})

    got = await meta.usage.for_package(app)
    assert (got.blobs, got.versions) == (3, 2)
    assert got.stored == 1000 + 10 + 20 + m1 + m2
    assert got.as_pushed == 2 * 1000 + 10 + 20 + m1 + m2

    owner = await meta.usage.for_owner(acme.id)
    assert (owner.blobs, owner.versions) == (4, 3)
    assert owner.stored == 1000 + 10 + 20 + 300 + m1 + m2 + m3, "base stored once"
    assert owner.as_pushed == 3 * 1000 + 10 + 20 + 300 + m1 + m2 + m3

    # A deleted version still takes its space until it is purged.
    await meta.manifests.delete(RepositoryName("acme/lib"), d3)
    assert await meta.usage.for_owner(acme.id) == owner
    empty = await meta.accounts.create("empty", "User")
    nothing = await meta.usage.for_owner(empty.id)
    assert (nothing.stored, nothing.as_pushed, nothing.blobs, nothing.versions) == (0, 0, 0, 0)
