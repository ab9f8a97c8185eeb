"""Failed sign-in limiting: a moving window of failures per key (client address, user name),
counted by the ``limits`` library.

The counts live in the process (``limits``' memory storage) unless a shared storage is given
(Redis, with ``redis_url``): then every worker and replica counts against the same limit.
Keys expire with their window; nothing is ever cleared wholesale, so cycling through user
names cannot reset anyone's count. A storage that fails is logged and not counted: sign-in
goes on (valid credentials are checked before the limiter is ever asked).
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

#: Seconds between two warnings about a failing storage.
_WARN_EVERY = 60.0


def failure_storage(redis_url: str = "") -> Storage:
    """Where failures are counted: Redis at ``redis_url`` (``redis://``, ``rediss://``), else
    this process's memory."""
    if not redis_url:
        return MemoryStorage()
    return RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix="cargobay")


class FailureLimiter:
    def __init__(
        self,
        *,
        limit: int,
        window: float,
        storage: Storage | None = None,
        namespace: str = "sign-in",
    ) -> None:
        self.limit = limit
        self.window = window
        self.storage = storage if storage is not None else MemoryStorage()
        self.namespace = namespace
        self._item = RateLimitItemPerSecond(limit, max(1, round(window)), namespace="failures")
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._warned = -_WARN_EVERY

    def scaled(self, factor: int, namespace: str) -> FailureLimiter:
        """A limiter ``factor`` times as permissive, on the same storage."""
        return FailureLimiter(
            limit=self.limit * factor, window=self.window, storage=self.storage, namespace=namespace
        )

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning("sign-in failures can't be counted: %s", type(exc).__name__)

    async def blocked(self, *keys: str) -> bool:
        """Whether any key has reached the limit of failures in the window."""
        try:
            for key in keys:
                if key and not await self._limiter.test(self._item, self.namespace, key):
                    return True
        except Exception as exc:  # the storage is down: don't block anyone
            self._storage_failed(exc)
        return False

    async def fail(self, *keys: str) -> None:
        """Count one failure for each key."""
        try:
            for key in keys:
                if key:
                    await self._limiter.hit(self._item, self.namespace, key)
        except Exception as exc:
            self._storage_failed(exc)
