"""A consistent copy of the embedded (SQLite) database while the registry keeps writing to it,
and what a copy references, for ``cargobay backup``.

SQLite's online backup API copies every page in one step under a read transaction: with the
write-ahead log, writers go on meanwhile and the copy is the database as of one commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from cargobay.ports.maintenance import DELETING


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` database URL, or None for another database."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    return Path(url.split(":///", 1)[1])


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, timeout=60)
    try:
        yield connection
    finally:
        connection.close()


def snapshot(source: Path, target: Path) -> None:
    """Copy the database ``source`` to the new file ``target``, consistently, online."""
    with _connect(source) as src, _connect(target) as dst:
        src.backup(dst)
        # The copy is a standalone file: no write-ahead log beside it.
        dst.execute("PRAGMA journal_mode=DELETE")


def blob_digests(path: Path) -> tuple[set[str], set[str]]:
    """The blobs the database at ``path`` needs (linked or listed by a manifest), and those it
    only has a ``live`` row for (an upload that may not have stored its bytes yet)."""
    with _connect(path) as c:
        needed = {
            d
            for (d,) in c.execute(
                "SELECT digest FROM blob_links UNION"
                " SELECT digest FROM manifest_refs WHERE kind = 'blob'"
            )
        }
        rows = {d for (d,) in c.execute("SELECT digest FROM blobs WHERE state <> ?", (DELETING,))}
    return needed, rows - needed


def trim(path: Path, rows_without_bytes: set[str]) -> None:
    """Make the copy at ``path`` stand alone: no upload sessions (their data is not copied),
    no rows of bytes that were not stored yet."""
    with _connect(path) as c:
        c.execute("DELETE FROM uploads")
        c.executemany(
            "DELETE FROM blobs WHERE digest = ?", [(d,) for d in sorted(rows_without_bytes)]
        )
        c.commit()
        c.execute("VACUUM")
