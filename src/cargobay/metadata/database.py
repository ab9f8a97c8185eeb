"""The database handle shared by the SQL stores: connections, transactions, the cached SQLite
read path, and the translation of a lost database into Unavailable.

On SQLite, statements are short local calls and run inline on the event loop (a thread hop
would cost more than the query). On PostgreSQL every store call runs in a worker thread
(:func:`offloaded`), so a slow query or a lock wait never stalls the other requests of a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cargobay.errors import InsufficientStorage, Unavailable
from cargobay.metadata.schema import repositories

T = TypeVar("T")


def _build_first(build: Callable[[Sequence[Any]], T], rows: list[Sequence[Any]]) -> T | None:
    return build(rows[0]) if rows else None


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # raw SQLite rows
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _current_task() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class _Reader:
    """A read-only SQLite connection with a row cache that lives until the next commit.

    Freshness is checked (``PRAGMA data_version``) once per request task: the reads one
    request makes see the database as of its first read, or later; and a request's own writes
    force a new check.
    """

    MAX_CACHED_BYTES = 32 * 1024 * 1024
    MAX_ROW_BYTES = 256 * 1024

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
        )
        self.connection.execute("PRAGMA query_only=1")
        self.version = -1
        self.cache: dict[tuple[str, tuple[Any, ...]], object] = {}
        self.cached_bytes = 0
        self.checked_by: object | None = None

    def query(
        self, sql: str, params: dict[str, Any], build: Callable[[list[Sequence[Any]]], T]
    ) -> T:
        task = _current_task()
        if task is None or task is not self.checked_by:
            (version,) = self.connection.execute("PRAGMA data_version").fetchone()
            self.checked_by = task
            if version != self.version:
                self.cache.clear()
                self.cached_bytes = 0
                self.version = version
        key = (sql, tuple(params.values()))
        try:
            return self.cache[key]  # type: ignore[return-value]
        except KeyError:
            pass
        rows: list[Sequence[Any]] = self.connection.execute(sql, params).fetchall()
        value = build(rows)
        size = sum(len(v) for row in rows for v in row if isinstance(v, (bytes, str)))
        if size <= self.MAX_ROW_BYTES:
            if self.cached_bytes + size > self.MAX_CACHED_BYTES:
                self.cache.clear()
                self.cached_bytes = 0
            self.cache[key] = value
            self.cached_bytes += size + 200
        return value

    def close(self) -> None:
        self.connection.close()


@contextlib.contextmanager
def _unavailable_on_lost_database() -> Iterator[None]:
    """Connection failures (the server is down, the network is gone) become Unavailable, which
    clients see as 503 with Retry-After. Integrity errors and bugs stay what they are."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if _is_full(exc):
            raise InsufficientStorage(
                "the registry is out of storage",
                where=f"the metadata database is out of space: {exc.orig}",
            ) from exc
        if exc.connection_invalidated or not _is_lock_error(exc):
            raise Unavailable("the metadata database is unavailable") from exc
        raise


def _is_full(exc: sa.exc.DBAPIError) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100)."""
    text = str(exc.orig).lower()
    return "database or disk is full" in text or getattr(exc.orig, "sqlstate", None) == "53100"


def _is_lock_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text or "deadlock" in text or "serializ" in text


class Database:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._local = threading.local()
        self._readers: list[_Reader] = []
        self._sqlite_path = engine.url.database if self.dialect == "sqlite" else None
        #: Store calls run in worker threads (a networked database).
        self.threaded = self.dialect != "sqlite"

    def fetch_one(
        self, sql: str, params: dict[str, Any], build: Callable[[Sequence[Any]], T]
    ) -> T | None:
        """``build(row)`` for the first row of a read-only hot-path query, or None."""
        return self.query(sql, params, partial(_build_first, build))

    def query(
        self, sql: str, params: dict[str, Any], build: Callable[[list[Sequence[Any]]], T]
    ) -> T:
        """``build(rows)`` of a read-only hot-path query.

        On SQLite this skips the pool, BEGIN and ROLLBACK: each thread keeps a read-only
        connection in autocommit mode, and a single SELECT sees the last committed state.
        Results are cached per thread while ``PRAGMA data_version`` stays the same, i.e. until any
        other connection (another worker, or this process's writer) commits: a read never
        returns anything older than the last commit.
        """
        if self._sqlite_path is None:
            with self.read() as c:
                rows: list[Sequence[Any]] = [tuple(r) for r in c.execute(sa.text(sql), params)]
            return build(rows)
        try:
            reader: _Reader | None = getattr(self._local, "reader", None)
            if reader is None:
                reader = self._local.reader = _Reader(self._sqlite_path)
                self._readers.append(reader)
            return reader.query(sql, params, build)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise Unavailable("the metadata database is unavailable") from exc

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        self.engine.dispose()

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One transaction; it commits when the block ends, or rolls back on an error. A lost
        database raises Unavailable (nothing was written)."""
        try:
            with _unavailable_on_lost_database(), self.engine.connect() as connection:
                connection = connection.execution_options(sqlite_begin="IMMEDIATE")
                with connection.begin():
                    yield connection
        finally:
            reader: _Reader | None = getattr(self._local, "reader", None)
            if reader is not None:
                reader.checked_by = None  # see our own write on the next read

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with _unavailable_on_lost_database(), self.engine.connect() as connection:
            yield connection

    def ping(self) -> None:
        """Raise Unavailable unless the database answers."""
        with self.read() as c:
            c.execute(sa.text("SELECT 1"))

    def bytewise(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """``column`` compared byte by byte (the spec's lexical order), whatever the locale."""
        return column.collate("C") if self.dialect == "postgresql" else column

    def repository_id(self, connection: sa.Connection, name: str) -> int | None:
        return connection.execute(
            sa.select(repositories.c.id).where(repositories.c.name == name)
        ).scalar()

    def ensure_repository(self, connection: sa.Connection, name: str) -> int:
        connection.execute(
            self._insert(repositories)
            .values(name=name, created_at=now())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        repository_id = self.repository_id(connection, name)
        assert repository_id is not None
        return repository_id

    def upsert(self, table: sa.Table, keys: list[str], values: dict[str, Any]) -> Any:
        stmt = self._insert(table).values(**values)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
        )


_in_worker = threading.local()
#: Store calls running at once in threads (each holds a pooled connection at most); one
#: limiter per event loop, made on first use.
_THREADS_PER_LOOP = 24
_limiters: dict[int, anyio.CapacityLimiter] = {}


def _limiter() -> anyio.CapacityLimiter:
    key = id(asyncio.get_running_loop())
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters[key] = anyio.CapacityLimiter(_THREADS_PER_LOOP)
    return limiter


C = TypeVar("C", bound=type)


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a store coroutine to completion in this thread. Store methods never suspend (their
    SQL is synchronous), so one ``send`` finishes them."""
    _in_worker.active = True
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        _in_worker.active = False
    coroutine.close()
    raise RuntimeError("a store method suspended; store methods must not await I/O")


def offloaded(cls: C) -> C:
    """Class decorator for SQL stores: on PostgreSQL each ``async`` method runs in a worker
    thread (nested store calls stay in that thread); on SQLite it runs inline."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            continue

        def wrap(method: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
            @functools.wraps(method)
            async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                coroutine = method(self, *args, **kwargs)
                if self.db.threaded and not getattr(_in_worker, "active", False):
                    return await anyio.to_thread.run_sync(_drive, coroutine, limiter=_limiter())
                return await coroutine

            return wrapper

        setattr(cls, name, wrap(method))
    return cls
