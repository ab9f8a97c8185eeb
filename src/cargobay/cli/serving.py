"""``cargobay serve`` and ``cargobay migrate``: run the registry and keep its schema current."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, settings_for
from cargobay.settings import Settings


def migrate(
    data_dir: DataDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", hidden=True)] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only check: exit 3 if the schema is not up to date.")
    ] = False,
) -> None:
    """Create or upgrade the metadata database schema."""
    from cargobay.metadata.engine import make_engine, pending_migrations
    from cargobay.metadata.engine import migrate as run_migrations

    settings = settings_for(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    if check:
        try:
            pending = pending_migrations(engine)
        except Exception as exc:
            typer.echo(f"cargobay: cannot reach the metadata database: {exc}", err=True)
            raise typer.Exit(2) from None
        if pending:
            typer.echo(
                "cargobay: the database schema is not up to date; run `cargobay migrate` first"
                " (once, from one machine, before starting or upgrading replicas)",
                err=True,
            )
            raise typer.Exit(3)
        return
    run_migrations(engine)
    with engine.connect() as connection:
        users = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM accounts WHERE type = 'User'"
        ).scalar()
    engine.dispose()
    if not quiet:
        typer.echo("database schema is up to date")
    if not users:
        data = f" --data-dir {settings.data_dir}"
        typer.echo(
            "cargobay: there are no users yet. Create the first administrator and a token:\n"
            f"  cargobay user create NAME --admin{data}\n"
            f"  cargobay token create --user NAME"
            f" --scopes read:packages,write:packages,delete:packages{data}"
        )


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    data_dir: DataDir = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics on this port (of --metrics-host, 127.0.0.1)."),
    ] = None,
) -> None:
    """Serve the registry (HTTP, granian). Stops cleanly on Ctrl-C or SIGTERM."""
    settings = settings_for(
        host=host, port=port, data_dir=data_dir, workers=workers, metrics_port=metrics_port
    )
    _check_bindable(settings.host, settings.port)
    if settings.metrics_port:
        _check_bindable(settings.metrics_host, settings.metrics_port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CARGOBAY_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.resolved_database_url.startswith("sqlite"):
        # The embedded database is created and upgraded in place, in a child process: the
        # main process only supervises workers and stays small (workers fork from it).
        subprocess.run([sys.executable, "-m", "cargobay", "migrate", "--quiet"], check=True)
    else:
        # A shared database is migrated by the operator, once (`cargobay migrate`), never by
        # replicas racing each other at start-up.
        checked = subprocess.run([sys.executable, "-m", "cargobay", "migrate", "--check"])
        if checked.returncode != 0:
            raise typer.Exit(checked.returncode)
    typer.echo(
        f"cargobay serving {settings.public_base_url} "
        f"(data in {settings.data_dir.resolve()}, {settings.workers} worker(s))"
    )
    with _metrics(settings):
        _granian(settings)


@contextlib.contextmanager
def _metrics(settings: Settings) -> Iterator[None]:
    """With ``metrics_port``: a fresh directory where the workers keep their numbers (the
    environment tells them), and the listener that sums them, in this process."""
    if not settings.metrics_port:
        yield
        return
    directory = tempfile.mkdtemp(prefix="cargobay-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from cargobay.api.metrics import start_listener
    from cargobay.metadata.engine import make_engine
    from cargobay.metadata.sql import SqlMetadata

    store: list[SqlMetadata] = []

    def counts() -> dict[str, int]:
        if not store:
            store.append(SqlMetadata(make_engine(settings.resolved_database_url)))
        return store[0].counts()

    start_listener(settings.metrics_host, settings.metrics_port, counts)
    typer.echo(
        f"cargobay metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    )
    try:
        yield
    finally:
        for opened in store:
            opened.close()
        shutil.rmtree(directory, ignore_errors=True)


def _granian(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

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
        backpressure=settings.backpressure or None,
    ).serve()


def _check_bindable(host: str, port: int) -> None:
    """Fail with one clear line (not a server backtrace) when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            typer.echo(f"cargobay: cannot listen on {host}:{port}: {exc.strerror}", err=True)
            raise typer.Exit(1) from None
