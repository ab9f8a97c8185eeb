"""Locks that elect one runner of background jobs among the workers and replicas that share a
metadata database: a PostgreSQL session advisory lock, or (SQLite, one machine) an exclusive
``flock`` on a file in the data directory. Both are released by the operating system or the
database when their holder dies, so another worker takes over."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from cargobay.ports.maintenance import JobLock


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLock:
    """``pg_try_advisory_lock`` on a connection kept for as long as the lock is held."""

    def __init__(self, engine: sa.Engine, name: str) -> None:
        self.engine = engine
        self.key = lock_key(name)
        self._connection: sa.Connection | None = None

    def try_acquire(self) -> bool:
        if self._connection is not None:
            return self.held()
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar()
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(sa.exc.DBAPIError):
            self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "ab")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            return False
        file.truncate(0)
        file.write(f"{os.getpid()}\n".encode())
        file.flush()
        self._file = file
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def job_lock(engine: sa.Engine, data_dir: Path, name: str) -> JobLock:
    """The lock kind that fits the database: advisory on PostgreSQL, a file otherwise."""
    if engine.dialect.name == "postgresql":
        return PostgresLock(engine, f"cargobay.jobs.{name}")
    return FileLock(data_dir / "locks" / f"{name}.lock")
