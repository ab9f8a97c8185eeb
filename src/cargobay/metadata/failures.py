"""Failed sign-ins counted in the metadata database: a ``limits`` storage for the moving
window, so every worker and replica on one database shares the limit (used when the database
is shared and no Redis is configured; see :mod:`cargobay.auth.ratelimit`).

One row per failure; rows older than the window are deleted as keys are counted, and all
expired rows now and then. Counting and adding are one transaction; two replicas failing at the
same instant may each add one past the limit, which only makes the next answer a 429 sooner.
"""

from __future__ import annotations

import hashlib
import time

import sqlalchemy as sa
from limits.aio.storage import MovingWindowSupport, Storage

from cargobay.metadata.database import Database, offloaded
from cargobay.metadata.schema import sign_in_failures as failures

#: Seconds between two sweeps of every expired row.
_SWEEP_EVERY = 60.0


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


@offloaded
class SqlFailureStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = None

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self._swept = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    def _count(self, c: sa.Connection, key: str, since: float) -> tuple[float | None, int]:
        row = c.execute(
            sa.select(sa.func.min(failures.c.at), sa.func.count()).where(
                failures.c.key == key, failures.c.at > since
            )
        ).one()
        return row[0], int(row[1])

    def _sweep(self, c: sa.Connection, key: str, since: float, now: float) -> None:
        if now - self._swept >= _SWEEP_EVERY:
            self._swept = now
            c.execute(sa.delete(failures).where(failures.c.at <= since))
        else:
            c.execute(sa.delete(failures).where(failures.c.key == key, failures.c.at <= since))

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Add ``amount`` failures to ``key`` unless that passes ``limit`` in ``expiry`` s."""
        now = time.time()
        since = now - expiry
        hashed = _hashed(key)
        with self.db.write() as c:
            self._sweep(c, hashed, since, now)
            _, count = self._count(c, hashed, since)
            if count + amount > limit:
                return False
            c.execute(sa.insert(failures), [{"key": hashed, "at": now}] * amount)
            return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """``(start of the window, failures in it)``."""
        now = time.time()
        with self.db.read() as c:
            oldest, count = self._count(c, _hashed(key), now - expiry)
        return (oldest if oldest is not None else now), count

    # The rest of ``limits``' storage interface (for other strategies and tools).

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        hashed = _hashed(key)
        with self.db.write() as c:
            c.execute(sa.insert(failures), [{"key": hashed, "at": now}] * amount)
            return self._count(c, hashed, now - expiry)[1]

    async def get(self, key: str) -> int:
        with self.db.read() as c:
            return self._count(c, _hashed(key), 0.0)[1]

    async def get_expiry(self, key: str) -> float:
        with self.db.read() as c:
            row = c.execute(
                sa.select(sa.func.max(failures.c.at)).where(failures.c.key == _hashed(key))
            ).scalar()
        return float(row) if row is not None else time.time()

    async def check(self) -> bool:
        try:
            with self.db.read() as c:
                c.execute(sa.select(sa.literal(1)))
        except Exception:
            return False
        return True

    async def reset(self) -> int | None:
        with self.db.write() as c:
            return int(c.execute(sa.delete(failures)).rowcount)

    async def clear(self, key: str) -> None:
        with self.db.write() as c:
            c.execute(sa.delete(failures).where(failures.c.key == _hashed(key)))
