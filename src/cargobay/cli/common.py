"""What every ``cargobay`` command shares: the settings they resolve (the same way ``serve``
does), the data directory checks, how errors end (one line on stderr, a non-zero exit) and how an
operator use case runs against the configured registry."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from cargobay.configuration import ConfigError, Resolved, masked, resolve
from cargobay.settings import Settings

if TYPE_CHECKING:
    from cargobay.metadata.sql import SqlMetadata
    from cargobay.services.accounts import AccountService

T = TypeVar("T")
S = TypeVar("S")

#: Exit codes: 1 an operation failed, 2 a configuration mistake.
EXIT_FAILED = 1
EXIT_CONFIG = 2

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where blobs and the SQLite database live."),
]

Role = Annotated[str, typer.Argument(help="read, write or admin")]


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """End the command with ``cargobay: MESSAGE`` on stderr (one line) and exit ``code``."""
    typer.echo(f"cargobay: {message}", err=True)
    raise typer.Exit(code)


def resolve_for(**overrides: object) -> Resolved:
    """The effective settings and their sources, or exit 2 with the mistake."""
    try:
        resolved = resolve(overrides)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    check_backends(resolved)
    return resolved


def check_backends(resolved: Resolved) -> None:
    """The optional backends the settings choose must be installed (``cargobay[s3]``,
    ``cargobay[postgres]``)."""
    settings = resolved.settings
    needs = []
    if settings.blob_store == "s3":
        needs.append(("blob_store", "boto3", "s3"))
    if settings.resolved_database_url.startswith(("postgres", "postgresql")):
        needs.append(("database_url", "psycopg", "postgres"))
    for setting, module, extra in needs:
        if importlib.util.find_spec(module) is None:
            source = resolved.sources.get(setting, "the default")
            fail(
                f"{setting} (from {source}) needs {module}, which is not installed:"
                f" pip install 'cargobay[{extra}]'",
                EXIT_CONFIG,
            )


def settings_for(**overrides: object) -> Settings:
    """The effective settings, with command-line ``overrides`` on top; worker processes read
    them from the environment, so overrides are exported there too."""
    return _exported(resolve_for(**overrides), overrides)


def registry_settings(data_dir: Path | None) -> Settings:
    """:func:`settings_for` a registry that must exist already (see :func:`require_registry`):
    a bad data directory ends the command with one line, and nothing is created."""
    resolved = resolve_for(data_dir=data_dir)
    require_registry(resolved)
    if resolved.settings.blob_store == "filesystem":
        prepare_data_dir(resolved, create=True)  # blobs live there, whatever the database
    return _exported(resolved, {"data_dir": data_dir})


def _exported(resolved: Resolved, overrides: dict[str, object]) -> Settings:
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"CARGOBAY_{name.upper()}"] = str(value)
    return resolved.settings


def _data_dir_source(resolved: Resolved) -> str:
    source = resolved.sources.get("data_dir")
    return f" (from {source})" if source else " (the default; set --data-dir or CARGOBAY_DATA_DIR)"


def check_data_dir(resolved: Resolved, *, creating: bool) -> bool:
    """Whether the data directory exists; a file in its place, or (``creating`` it) a missing
    parent, ends the command with one line and exit 2. Creates nothing."""
    path = resolved.settings.data_dir
    where = _data_dir_source(resolved)
    try:
        exists = path.exists()
        if exists and not path.is_dir():
            fail(f"data directory {path} is not a directory{where}", EXIT_CONFIG)
        parent = path.absolute().parent
        if not exists and creating and not parent.is_dir():
            fail(f"data directory {path}: its parent {parent} does not exist{where}", EXIT_CONFIG)
    except OSError as exc:
        fail(f"cannot access data directory {path}: {exc.strerror}{where}", EXIT_CONFIG)
    return exists


def prepare_data_dir(resolved: Resolved, *, create: bool) -> Path:
    """Check the data directory (``create``: make it if its parent exists) and that it is
    writable; a mistake ends the command with one line and exit 2."""
    path = resolved.settings.data_dir
    where = _data_dir_source(resolved)
    exists = check_data_dir(resolved, creating=create)
    if not exists:
        if not create:
            return path
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            fail(f"cannot create data directory {path}: {exc.strerror}{where}", EXIT_CONFIG)
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        fail(f"data directory {path} is not writable: {exc.strerror}{where}", EXIT_CONFIG)
    return path


def require_registry(resolved: Resolved) -> None:
    """Refuse to act on a registry that does not exist (instead of creating a new, empty one):
    say where we looked."""
    from cargobay.metadata.engine import make_engine, pending_migrations
    from cargobay.metadata.engine import migrate as run_migrations

    settings = resolved.settings
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        prepare_data_dir(resolved, create=False)
        database = Path(url.split(":///", 1)[1]) if ":///" in url else settings.data_dir
        if not database.is_file():
            fail(
                f"no registry at {settings.data_dir.absolute()} (no database {database})"
                f"{_data_dir_source(resolved)}; start one with `cargobay serve` or"
                " `cargobay migrate`",
                EXIT_CONFIG,
            )
        engine = make_engine(url)
        try:
            run_migrations(engine)
        finally:
            engine.dispose()
        return
    engine = make_engine(url)
    try:
        from sqlalchemy import inspect

        try:
            empty = not inspect(engine).has_table("alembic_version")
            outdated = not empty and pending_migrations(engine)
        except Exception as exc:
            fail(unreachable(url, exc))
    finally:
        engine.dispose()
    if empty:
        fail(
            f"no registry in the database {masked('database_url', url)}; create its schema"
            " with `cargobay migrate` first",
            EXIT_CONFIG,
        )
    if outdated:
        fail("the database schema is not up to date; run `cargobay migrate` first", 3)


def unreachable(url: str, exc: BaseException) -> str:
    """One line saying the database at ``url`` (password masked) did not answer, and why."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
    return f"cannot reach the metadata database {masked('database_url', url)}: {reason[0]}"


def operate(data_dir: Path | None, action: Callable[[AccountService], Coroutine[Any, Any, T]]) -> T:
    """Run one operator use case against the configured registry (which must exist); errors
    end with one line and exit 1."""
    from cargobay.services.accounts import AccountService

    return operate_with(
        data_dir,
        lambda metadata, settings: AccountService(
            metadata, workflow_token_ttl=settings.workflow_token_ttl
        ),
        action,
    )


def operate_with(
    data_dir: Path | None,
    build: Callable[[SqlMetadata, Settings], S],
    action: Callable[[S], Coroutine[Any, Any, T]],
) -> T:
    """:func:`operate` with the service ``build(metadata, settings)`` makes."""
    from cargobay.app import build_metadata
    from cargobay.errors import CargobayError

    resolved = resolve_for(data_dir=data_dir)
    require_registry(resolved)
    settings = resolved.settings
    metadata = build_metadata(settings)
    service = build(metadata, settings)
    try:
        return asyncio.run(action(service))
    except (CargobayError, ValueError) as exc:
        fail(str(getattr(exc, "message", exc)))
    finally:
        metadata.close()
