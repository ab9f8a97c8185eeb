"""A fresh PostgreSQL database for a test: created on the machine's server (the one named by
``CARGOBAY_TEST_POSTGRES_URL``, default the local server as user postgres) and dropped after
it; the test is skipped, saying so, when no server answers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "CARGOBAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> sa.Engine | None:
    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return engine
    except Exception:
        return None


@contextlib.contextmanager
def fresh_database(prefix: str = "cargobay_test") -> Iterator[str]:
    """A new database ``<prefix>_<random>``; yields its URL (in the form of
    ``CARGOBAY_TEST_POSTGRES_URL``); the database is dropped afterwards."""
    admin = _admin_engine()
    if admin is None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set CARGOBAY_TEST_POSTGRES_URL)")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
