"""Liveness and readiness: is the process serving, and can it reach what it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from cargobay.errors import InsufficientStorage, Unavailable
from cargobay.storage.base import BlobStore

#: A dependency that doesn't answer within this many seconds counts as down.
CHECK_TIMEOUT = 3.0


class HealthService:
    def __init__(
        self,
        ping_database: Callable[[], None],
        store: BlobStore,
        free_space: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.ping_database = ping_database
        self.store = store
        #: Raises InsufficientStorage when the local data volume is nearly full (pushes would
        #: fail; pulls still work, but a load balancer should send pushes elsewhere).
        self.free_space = free_space

    async def readiness(self) -> dict[str, str]:
        """``{"database": "ok" | <error>, "blob_store": ..., "free_space": ...}``; all "ok"
        means ready."""
        result: dict[str, str] = {}
        checks: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("database", self._database),
            ("blob_store", self.store.ready),
        ]
        if self.free_space is not None:
            checks.append(("free_space", self.free_space))
        for name, check in checks:
            try:
                with anyio.fail_after(CHECK_TIMEOUT):
                    await check()
                result[name] = "ok"
            except (Unavailable, InsufficientStorage, TimeoutError, OSError) as exc:
                result[name] = str(exc) or type(exc).__name__
        return result

    async def _database(self) -> None:
        await anyio.to_thread.run_sync(self.ping_database, abandon_on_cancel=True)
