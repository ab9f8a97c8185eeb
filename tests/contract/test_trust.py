"""The trust-policy store (ports/trust.py), on every SQL backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cargobay.metadata.sql import SqlMetadata

pytestmark = pytest.mark.anyio

ISSUER = "https://token.actions.githubusercontent.com"


async def test_policies_per_repository_and_per_issuer(meta: SqlMetadata) -> None:
    org = await meta.accounts.create("acme", "Organization")
    app = await meta.accounts.create_source_repository(org.id, "app", False)
    lib = await meta.accounts.create_source_repository(org.id, "lib", True)
    first = await meta.trust.create(app, ISSUER, None, {"repository": "acme/app", "ref": "x"})
    assert first.repository == "acme/app" and first.audience is None
    assert first.claims == (("ref", "x"), ("repository", "acme/app"))
    second = await meta.trust.create(lib, "https://gitlab.com", "aud", {"project_path": "a/b"})
    third = await meta.trust.create(lib, ISSUER, None, {"repository": "acme/lib"})
    assert await meta.trust.for_repository(app) == [first]
    assert await meta.trust.for_repository(lib) == [second, third]
    assert await meta.trust.for_issuer(ISSUER) == [first, third]
    assert await meta.trust.for_issuer(ISSUER + "/") == []
    # a policy is removed only through its own repository
    assert not await meta.trust.delete(app, third.id)
    assert await meta.trust.delete(lib, third.id)
    assert not await meta.trust.delete(lib, third.id)
    assert await meta.trust.for_issuer(ISSUER) == [first]


async def test_an_id_token_is_used_once_until_it_expires(meta: SqlMetadata) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await meta.trust.first_use("k" * 64, later)
    assert not await meta.trust.first_use("k" * 64, later)
    assert await meta.trust.first_use("j" * 64, later)
    # an expired record is forgotten (a token past its exp is refused before this anyway)
    assert await meta.trust.first_use("e" * 64, datetime.now(UTC) - timedelta(seconds=1))
    assert await meta.trust.first_use("e" * 64, later)


async def test_racing_first_uses_let_exactly_one_through(meta: SqlMetadata) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    results = await asyncio.gather(*(meta.trust.first_use("r" * 64, later) for _ in range(8)))
    assert results.count(True) == 1
