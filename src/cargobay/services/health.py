"""Liveness and readiness: is the process serving, and can it reach what it needs."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from cargobay.errors import Unavailable
from cargobay.storage.base import BlobStore

#: A dependency that doesn't answer within this many seconds counts as down.
CHECK_TIMEOUT = 3.0


class HealthService:
    def __init__(self, ping_database: Callable[[], None], store: BlobStore) -> None:
        self.ping_database = ping_database
        self.store = store

    async def readiness(self) -> dict[str, str]:
        """``{"database": "ok" | <error>, "blob_store": ...}``; all "ok" means ready."""
        result: dict[str, str] = {}
        for name, check in (("database", self._database), ("blob_store", self.store.ready)):
            try:
                with anyio.fail_after(CHECK_TIMEOUT):
                    await check()
                result[name] = "ok"
            except (Unavailable, TimeoutError, OSError) as exc:
                result[name] = str(exc) or type(exc).__name__
        return result

    async def _database(self) -> None:
        await anyio.to_thread.run_sync(self.ping_database, abandon_on_cancel=True)
