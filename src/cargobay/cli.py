"""The ``cargobay`` command: ``serve``, ``migrate``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cargobay.settings import Settings, load_settings

cli = typer.Typer(
    help="cargobay: a self-hosted OCI container registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where blobs and the SQLite database live."),
]


def _settings(**overrides: object) -> Settings:
    settings = load_settings(**overrides)
    # Worker processes read their settings from the environment.
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"CARGOBAY_{name.upper()}"] = str(value)
    return settings


@cli.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the metadata database schema."""
    from cargobay.metadata.engine import make_engine
    from cargobay.metadata.engine import migrate as run_migrations

    settings = _settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    run_migrations(engine)
    engine.dispose()
    typer.echo("database schema is up to date")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    data_dir: DataDir = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the registry (HTTP, granian). Stops cleanly on Ctrl-C or SIGTERM."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    settings = _settings(host=host, port=port, data_dir=data_dir, workers=workers)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CARGOBAY_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.resolved_database_url.startswith("sqlite"):
        # The embedded database is created and upgraded in place, in a child process: the
        # main process only supervises workers and stays small (workers fork from it).
        subprocess.run(
            [sys.executable, "-m", "cargobay", "migrate"], check=True, stdout=subprocess.DEVNULL
        )
    typer.echo(
        f"cargobay serving {settings.public_base_url} "
        f"(data in {settings.data_dir.resolve()}, {settings.workers} worker(s))"
    )
    Granian(
        "cargobay.server:worker_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        log_level=LogLevels.warning,
        log_access=False,
        backlog=2048,
    ).serve()


def main() -> None:
    cli()
