"""Failed sign-ins counted in the metadata database (SQLite and PostgreSQL): two processes on
one database share one limit; the window moves; nobody's count is wiped by others' keys."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
import sqlalchemy as sa

from cargobay.auth.ratelimit import FailureLimiter
from cargobay.metadata.engine import make_engine, migrate
from cargobay.metadata.sql import SqlMetadata


@pytest.fixture
def two_replicas(database_url: str) -> Iterator[tuple[SqlMetadata, SqlMetadata]]:
    first = make_engine(database_url)
    migrate(first)
    second = make_engine(database_url)
    yield SqlMetadata(first), SqlMetadata(second)
    first.dispose()
    second.dispose()


def test_replicas_on_one_database_share_the_limit(
    two_replicas: tuple[SqlMetadata, SqlMetadata],
) -> None:
    a, b = two_replicas

    async def scenario() -> None:
        one = FailureLimiter(limit=3, window=60, storage=a.failure_storage())
        other = FailureLimiter(limit=3, window=60, storage=b.failure_storage())
        await one.fail("client:10.0.0.1", "user:octo")
        await other.fail("client:10.0.0.1")
        assert not await one.blocked("client:10.0.0.1")
        await other.fail("client:10.0.0.1")
        assert await one.blocked("client:10.0.0.1")
        assert await other.blocked("client:10.0.0.1", "user:someone")
        assert not await other.blocked("user:octo", "client:10.0.0.2")

    anyio.run(scenario)


def test_the_window_moves_and_expired_rows_go(
    two_replicas: tuple[SqlMetadata, SqlMetadata],
) -> None:
    a, _ = two_replicas

    async def scenario() -> None:
        limiter = FailureLimiter(limit=2, window=1, storage=a.failure_storage())
        await limiter.fail("client:x")
        await limiter.fail("client:x")
        assert await limiter.blocked("client:x")
        await anyio.sleep(1.2)
        assert not await limiter.blocked("client:x")
        await limiter.fail("client:x")  # counts anew; the expired rows of the key go
        assert not await limiter.blocked("client:x")

    anyio.run(scenario)
    with a.engine.connect() as c:
        keys = c.execute(sa.text("SELECT key FROM sign_in_failures")).scalars().all()
    assert len(keys) == 1 and all(len(k) == 64 for k in keys)  # hashed, never a user name


def test_long_and_odd_keys(two_replicas: tuple[SqlMetadata, SqlMetadata]) -> None:
    a, _ = two_replicas

    async def scenario() -> None:
        limiter = FailureLimiter(limit=1, window=60, storage=a.failure_storage())
        key = "user:" + "\udcff\u00e9" * 10_000
        await limiter.fail(key)
        assert await limiter.blocked(key)

    anyio.run(scenario)
