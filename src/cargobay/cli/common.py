"""What every ``cargobay`` command shares: the settings they resolve and how an operator use case
runs against the configured database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from cargobay.settings import Settings, load_settings

if TYPE_CHECKING:
    from cargobay.metadata.sql import SqlMetadata
    from cargobay.services.accounts import AccountService

T = TypeVar("T")
S = TypeVar("S")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where blobs and the SQLite database live."),
]

Role = Annotated[str, typer.Argument(help="read, write or admin")]


def settings_for(**overrides: object) -> Settings:
    """The effective settings, with command-line ``overrides`` on top; worker processes read
    them from the environment, so overrides are exported there too."""
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            typer.echo(f"cargobay: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"CARGOBAY_{name.upper()}"] = str(value)
    return settings


def operate(data_dir: Path | None, action: Callable[[AccountService], Coroutine[Any, Any, T]]) -> T:
    """Run one operator use case against the configured database; errors end with exit 1."""
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
    from cargobay.metadata.engine import make_engine
    from cargobay.metadata.engine import migrate as run_migrations

    settings = settings_for(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.resolved_database_url.startswith("sqlite"):
        engine = make_engine(settings.resolved_database_url)
        run_migrations(engine)
        engine.dispose()
    metadata = build_metadata(settings)
    service = build(metadata, settings)
    try:
        return asyncio.run(action(service))
    except (CargobayError, ValueError) as exc:
        typer.echo(f"cargobay: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()
