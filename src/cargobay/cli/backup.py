"""``cargobay backup DIR`` and ``cargobay restore DIR``: the embedded default (SQLite + files),
online. For PostgreSQL + S3 see docs/operations.md (pg_dump, then the bucket)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, check_data_dir, fail, require_registry, resolve_for

HardLink = Annotated[
    bool,
    typer.Option(
        "--hard-link",
        help="Hard-link blob files instead of copying them (same file system only; the backup"
        " then shares the files' storage with the registry).",
    ),
]


def backup(
    directory: Annotated[Path, typer.Argument(help="A new or empty directory.")],
    hard_link: HardLink = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Back up the registry's database and blobs into DIR while it keeps serving."""
    from cargobay.app import build_metadata
    from cargobay.errors import CargobayError
    from cargobay.metadata.snapshot import sqlite_path
    from cargobay.services import backup as service
    from cargobay.storage.filesystem import FilesystemBlobStore

    resolved = resolve_for(data_dir=data_dir)
    settings = resolved.settings
    database = sqlite_path(settings.resolved_database_url)
    if database is None or settings.blob_store != "filesystem":
        fail(
            "cargobay backup copies the embedded SQLite database and blob files; for PostgreSQL"
            " and S3 back up the database with pg_dump, then the bucket (docs/operations.md)"
        )
    require_registry(resolved)
    metadata = build_metadata(settings)
    progress = None
    if not as_json and sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)

        def progress(done: int, total: int) -> None:
            if done % 100 == 0 or done == total:
                console.print(f"blobs: {done}/{total}", end="\r")

    try:
        report = service.backup(
            directory,
            database=database,
            gc=metadata.gc,
            store=FilesystemBlobStore(settings.data_dir),
            extra_files=[settings.resolved_token_key_file, settings.resolved_secret_key_file],
            link=hard_link,
            progress=progress,
        )
    except (CargobayError, OSError) as exc:
        fail(f"backup failed: {getattr(exc, 'message', exc)}", 1)
    finally:
        metadata.close()
    typer.echo(json.dumps(report.as_dict()) if as_json else report.summary())


def restore(
    directory: Annotated[Path, typer.Argument(help="A directory `cargobay backup` made.")],
    hard_link: HardLink = False,
    data_dir: DataDir = None,
) -> None:
    """Restore a backup into the data directory, which must not hold a registry yet (stop
    the registry, move its data directory aside, restore, then `cargobay serve`)."""
    from cargobay.errors import CargobayError
    from cargobay.services import backup as service

    resolved = resolve_for(data_dir=data_dir)
    settings = resolved.settings
    if settings.blob_store != "filesystem" or (
        settings.database_url and settings.database_url != "sqlite"
    ):
        fail("cargobay restore restores the embedded default (SQLite + files) only")
    check_data_dir(resolved, creating=True)  # the restore creates it, once the backup is read
    try:
        described = service.restore(directory, settings.data_dir, link=hard_link)
    except (CargobayError, OSError) as exc:
        fail(f"restore failed: {getattr(exc, 'message', exc)}", 1)
    typer.echo(
        f"restored {directory} (taken {described.get('started_at')}, {described.get('blobs')}"
        f" blobs) into {settings.data_dir}; run `cargobay migrate` if this version is newer"
    )
