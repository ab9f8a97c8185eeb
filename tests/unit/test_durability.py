"""An acknowledged write is durable by default: the embedded SQLite database runs with
``synchronous=FULL`` (WAL), so a committed transaction survives an OS crash or a power loss.
The faster ``normal`` mode is only there when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargobay.app import build_metadata
from cargobay.metadata.engine import make_engine, migrate
from cargobay.settings import Settings

FULL, NORMAL = 2, 1  # PRAGMA synchronous values


def _pragmas(settings: Settings) -> tuple[str, int]:
    migrate(make_engine(settings.resolved_database_url))
    metadata = build_metadata(settings)
    try:
        with metadata.engine.connect() as c:
            journal = c.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = c.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        metadata.close()
    return str(journal), int(synchronous or 0)


def test_the_default_is_durable(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).sqlite_synchronous == "full"
    assert _pragmas(Settings(data_dir=tmp_path)) == ("wal", FULL)


def test_the_fast_mode_is_an_explicit_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARGOBAY_SQLITE_SYNCHRONOUS", "normal")
    assert _pragmas(Settings(data_dir=tmp_path)) == ("wal", NORMAL)


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, sqlite_synchronous="off")  # type: ignore[arg-type]
