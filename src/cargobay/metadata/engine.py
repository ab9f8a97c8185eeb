"""Database engines and migrations (Alembic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, synchronous: str = "full") -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and ``synchronous`` (``full``: a
    committed transaction survives an OS crash or power loss; ``normal``: faster, but the last
    ones may roll back after such a crash)."""
    if synchronous not in ("full", "normal"):
        raise ValueError(f"unknown SQLite synchronous mode {synchronous!r}")
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # cargobay emits BEGIN itself (see _begin) so writers can take the lock up front.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            # Writers BEGIN IMMEDIATE: two deferred transactions that both upgrade to writing
            # would fail at once with "database is locked" instead of waiting.
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # the driver cargobay ships with
    return sa.create_engine(
        url,
        pool_pre_ping=True,  # a replica reconnects by itself after the database restarts
        pool_size=10,
        max_overflow=20,
        pool_timeout=5,
        connect_args={"connect_timeout": 5},
    )


def _alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision."""
    command.upgrade(_alembic_config(engine), "head")


def pending_migrations(engine: sa.Engine) -> bool:
    """True if the database is not at the newest revision."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current != head
