"""Contract suites run on every SQL backend: SQLite, and PostgreSQL when one answers.

Fixtures shared by every module here:

- ``database_url``: a SQLite file, then a fresh PostgreSQL database (from
  ``CARGOBAY_TEST_POSTGRES_URL``, default the local server on 127.0.0.1:5432 as user postgres;
  dropped after the test; skipped, saying so, when none answers);
- ``engine``: an engine on it, not migrated; ``meta``: the migrated metadata store on it;
- ``anyio_backend``: the async tests run on asyncio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from kit.postgres import fresh_database

from cargobay.metadata.engine import make_engine, migrate
from cargobay.metadata.sql import SqlMetadata


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on the test's database, schema not yet migrated."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def meta(database_url: str) -> Iterator[SqlMetadata]:
    """The metadata store on the test's database, migrated to the latest schema."""
    engine = make_engine(database_url)
    migrate(engine)
    store = SqlMetadata(engine)
    yield store
    store.close()
