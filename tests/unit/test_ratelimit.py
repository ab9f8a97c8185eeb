"""Failed sign-ins counted in a moving window, per process or shared through Redis."""

from __future__ import annotations

import os
import uuid

import anyio
import pytest
import redis

from cargobay.auth.ratelimit import FailureLimiter, failure_storage

REDIS_URL = os.environ.get("CARGOBAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL} ({exc}); set CARGOBAY_TEST_REDIS_URL")


def test_failures_are_limited_per_key() -> None:
    async def scenario() -> None:
        limiter = FailureLimiter(limit=3, window=60)
        for _ in range(3):
            assert not await limiter.blocked("client:1", "user:octo")
            await limiter.fail("client:1", "user:octo")
        assert await limiter.blocked("client:1", "user:someone")
        assert await limiter.blocked("client:2", "user:octo")
        assert not await limiter.blocked("client:2", "user:other")

    anyio.run(scenario)


def test_cycling_through_user_names_does_not_reset_anyone() -> None:
    async def scenario() -> None:
        limiter = FailureLimiter(limit=3, window=60)
        for _ in range(3):
            await limiter.fail("user:victim-of-guessing")
        for n in range(110_000):  # one client inventing names (more than any table size)
            await limiter.fail(f"user:invented-{n}")
        assert await limiter.blocked("user:victim-of-guessing")

    anyio.run(scenario)


def test_a_scaled_limiter_shares_the_storage_with_its_own_limit() -> None:
    async def scenario() -> None:
        limiter = FailureLimiter(limit=2, window=60)
        per_user = limiter.scaled(3, "per-user")
        for _ in range(2):
            await limiter.fail("k")
            await per_user.fail("k")
        assert await limiter.blocked("k")
        assert not await per_user.blocked("k")
        assert per_user.storage is limiter.storage

    anyio.run(scenario)


def test_replicas_sharing_redis_share_the_limit() -> None:
    """Two limiters on one Redis (two processes or replicas): failures on one count on the
    other, so N replicas don't multiply the limit."""
    _redis_or_skip()
    key = f"client:{uuid.uuid4()}"

    async def scenario() -> None:
        first = FailureLimiter(limit=4, window=60, storage=failure_storage(REDIS_URL))
        second = FailureLimiter(limit=4, window=60, storage=failure_storage(REDIS_URL))
        await first.fail(key)
        await second.fail(key)
        await first.fail(key)
        assert not await second.blocked(key)
        await second.fail(key)
        assert await first.blocked(key)
        assert await second.blocked(key)

    anyio.run(scenario)


def test_a_storage_that_is_down_blocks_nobody() -> None:
    async def scenario() -> None:
        limiter = FailureLimiter(
            limit=1, window=60, storage=failure_storage("redis://127.0.0.1:1/0")
        )
        await limiter.fail("client:x")
        assert not await limiter.blocked("client:x")

    anyio.run(scenario)
