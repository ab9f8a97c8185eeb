"""``cargobay serve`` and ``cargobay migrate``: run the registry and keep its schema current."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from cargobay.cli.common import (
    EXIT_CONFIG,
    DataDir,
    fail,
    prepare_data_dir,
    resolve_for,
    unreachable,
)
from cargobay.configuration import Resolved
from cargobay.settings import Settings

#: Addresses that listen on every interface: no client can use them as the registry's address.
WILDCARDS = ("0.0.0.0", "::", "[::]", "")  # noqa: S104 (recognised, not bound)


def migrate(
    data_dir: DataDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", hidden=True)] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only check: exit 3 if the schema is not up to date.")
    ] = False,
) -> None:
    """Create or upgrade the metadata database schema."""
    from sqlalchemy.exc import OperationalError

    from cargobay.metadata.engine import make_engine, pending_migrations
    from cargobay.metadata.engine import migrate as run_migrations

    resolved = resolve_for(data_dir=data_dir)
    settings = resolved.settings
    if settings.resolved_database_url.startswith("sqlite"):
        prepare_data_dir(resolved, create=True)
    engine = make_engine(settings.resolved_database_url)
    if check:
        try:
            pending = pending_migrations(engine)
        except Exception as exc:
            fail(unreachable(settings.resolved_database_url, exc), EXIT_CONFIG)
        if pending:
            typer.echo(
                "cargobay: the database schema is not up to date; run `cargobay migrate` first"
                " (once, from one machine, before starting or upgrading replicas)",
                err=True,
            )
            raise typer.Exit(3)
        return
    try:
        run_migrations(engine)
        with engine.connect() as connection:
            users = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM accounts WHERE type = 'User'"
            ).scalar()
    except OperationalError as exc:
        fail(unreachable(settings.resolved_database_url, exc))
    finally:
        engine.dispose()
    if not quiet:
        typer.echo("database schema is up to date")
    if not users:
        data = f" --data-dir {settings.data_dir.absolute()}"
        command = command_path()
        typer.echo(
            "cargobay: there are no users yet. Create the first administrator and a token:\n"
            f"  {command} user create NAME --admin{data}\n"
            f"  {command} token create --user NAME"
            f" --scopes read:packages,write:packages,delete:packages{data}"
        )


def command_path() -> str:
    """How to run this very ``cargobay``: its bare name when that is what PATH finds, else the
    full path of the script installed next to this Python (e.g. ``.venv/bin/cargobay``)."""
    script = Path(sys.executable).parent / "cargobay"
    if not script.exists():
        return f"{sys.executable} -m cargobay"
    found = shutil.which("cargobay")
    if found and Path(found).resolve() == script.resolve():
        return "cargobay"
    return str(script)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    data_dir: DataDir = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    hostname: Annotated[
        str | None,
        typer.Option(
            help="The site's host name; the registry answers on containers.HOSTNAME"
            " (subdomain isolation)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate chain (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="The certificate's private key (PEM)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics on this port (of --metrics-host, 127.0.0.1)."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="The address clients use, e.g. https://registry.example.com."),
    ] = None,
) -> None:
    """Serve the registry (HTTP or HTTPS, granian). Stops cleanly on Ctrl-C or SIGTERM; SIGHUP
    restarts the workers, which read the TLS certificate and key again."""
    overrides: dict[str, object] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "workers": workers,
        "hostname": hostname,
        "tls_cert": tls_cert.resolve() if tls_cert else None,
        "tls_key": tls_key.resolve() if tls_key else None,
        "metrics_port": metrics_port,
    }
    resolved = resolve_for(**overrides, base_url=base_url)
    settings = resolved.settings
    check_public_address(resolved)
    _check_bindable(settings.host, settings.port)
    if settings.metrics_port:
        _check_bindable(settings.metrics_host, settings.metrics_port)
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not path.is_file():
            fail(f"cannot read {path} (TLS certificate or key)", EXIT_CONFIG)
    prepare_data_dir(resolved, create=True)
    for name, value in {**overrides, "base_url": base_url}.items():
        if value is not None:  # worker processes read the settings from the environment
            os.environ[f"CARGOBAY_{name.upper()}"] = str(value)
    os.environ["CARGOBAY_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.resolved_database_url.startswith("sqlite"):
        # The embedded database is created and upgraded in place, in a child process: the
        # main process only supervises workers and stays small (workers fork from it).
        migrated = subprocess.run([sys.executable, "-m", "cargobay", "migrate", "--quiet"])
        if migrated.returncode != 0:
            raise typer.Exit(migrated.returncode)
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
    typer.echo(_isolation_line(settings))
    from cargobay.storage import hashing

    hashing.configure(enabled=settings.resumable_hash)
    typer.echo(f"uploads: {hashing.describe()}")
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


#: The signals the server acts on: stop (SIGTERM, SIGINT) and reload the certificate (SIGHUP).
SERVER_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def _granian(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    # A supervisor may start the server with these signals blocked (the mask is inherited
    # across exec, and installing a handler does not unblock): `systemctl reload` and
    # `kill -HUP` would then be silently ignored.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SERVER_SIGNALS)
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
        ssl_cert=settings.tls_cert,
        ssl_key=settings.tls_key,
        # A bounded stop: workers still busy at the deadline are killed; an upload cut off
        # keeps the bytes it stored, resumable from the Range it reports.
        workers_kill_timeout=settings.shutdown_timeout,
    ).serve()


def _isolation_line(settings: Settings) -> str:
    if settings.isolated:
        return (
            f"subdomain isolation on: the site at {settings.public_base_url}, the registry at "
            f"{settings.registry_url} (docker login {settings.registry_address})"
        )
    return (
        "subdomain isolation OFF: pages and registry share one origin, so pushed bytes are "
        "served where session cookies live; set --hostname (CARGOBAY_HOSTNAME) to separate them"
    )


def check_public_address(resolved: Resolved) -> None:
    """On a wildcard address the registry cannot know the address clients reach it by (token
    realm, upload locations, page links): it needs a base URL."""
    settings = resolved.settings
    if settings.host.strip() in WILDCARDS and not (settings.base_url or settings.hostname):
        source = resolved.sources.get("host", "the default")
        fail(
            f"host {settings.host!r} (from {source}) listens on every address, so clients need"
            " the registry's public address: set --base-url or CARGOBAY_BASE_URL"
            " (e.g. http://registry.example.com:5000)",
            EXIT_CONFIG,
        )


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
