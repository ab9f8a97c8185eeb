"""The ``cargobay`` command: ``serve``, ``migrate``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cargobay.settings import Settings, load_settings

if TYPE_CHECKING:
    from cargobay.services.accounts import AccountService

T = TypeVar("T")

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

    settings = _settings(data_dir=data_dir)
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
    _check_bindable(settings.host, settings.port)
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
    from cargobay.storage import hashing

    hashing.configure(enabled=settings.resumable_hash)
    typer.echo(f"uploads: {hashing.describe()}")
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


def main() -> None:
    cli()


# -- operator commands: accounts, repositories, tokens, packages --------------------------------

user_cli = typer.Typer(help="Users.", no_args_is_help=True)
org_cli = typer.Typer(help="Organizations.", no_args_is_help=True)
team_cli = typer.Typer(help="Teams inside organizations.", no_args_is_help=True)
repo_cli = typer.Typer(help="Source repositories that packages link to.", no_args_is_help=True)
token_cli = typer.Typer(help="Personal access tokens and workflow tokens.", no_args_is_help=True)
package_cli = typer.Typer(help="Package visibility, access and links.", no_args_is_help=True)
for _name, _group in (
    ("user", user_cli),
    ("org", org_cli),
    ("team", team_cli),
    ("repo", repo_cli),
    ("token", token_cli),
    ("package", package_cli),
):
    cli.add_typer(_group, name=_name)

Role = Annotated[str, typer.Argument(help="read, write or admin")]


def _operate(
    data_dir: Path | None, action: Callable[[AccountService], Coroutine[Any, Any, T]]
) -> T:
    """Run one operator use case against the configured database; errors end with exit 1."""
    from cargobay.app import build_metadata
    from cargobay.errors import CargobayError
    from cargobay.metadata.engine import make_engine
    from cargobay.metadata.engine import migrate as run_migrations
    from cargobay.services.accounts import AccountService

    settings = _settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.resolved_database_url.startswith("sqlite"):
        engine = make_engine(settings.resolved_database_url)
        run_migrations(engine)
        engine.dispose()
    metadata = build_metadata(settings)
    service = AccountService(metadata, workflow_token_ttl=settings.workflow_token_ttl)
    try:
        return asyncio.run(action(service))
    except (CargobayError, ValueError) as exc:
        typer.echo(f"cargobay: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()


@user_cli.command("create")
def user_create(
    name: str,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make a site administrator.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a web sign-in password from stdin.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user. Registry clients sign in with tokens, never with the password."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    _operate(
        data_dir,
        lambda s: s.create_user(name, email=email, password=password, site_admin=admin),
    )
    typer.echo(f"created user {name.lower()}")


@user_cli.command("suspend")
def user_suspend(name: str, data_dir: DataDir = None) -> None:
    """Suspend a user: every token of theirs stops working."""
    _operate(data_dir, lambda s: s.set_suspended(name, True))
    typer.echo(f"suspended {name.lower()}")


@user_cli.command("unsuspend")
def user_unsuspend(name: str, data_dir: DataDir = None) -> None:
    _operate(data_dir, lambda s: s.set_suspended(name, False))
    typer.echo(f"unsuspended {name.lower()}")


@org_cli.command("create")
def org_create(
    name: str,
    owner: Annotated[str, typer.Option(help="The first owner (a user).")],
    data_dir: DataDir = None,
) -> None:
    """Create an organization (a namespace) with its first owner."""
    _operate(data_dir, lambda s: s.create_org(name, owner))
    typer.echo(f"created organization {name.lower()}")


@org_cli.command("add-member")
def org_add_member(
    org: str,
    user: str,
    owner: Annotated[bool, typer.Option("--owner", help="Add as an owner.")] = False,
    data_dir: DataDir = None,
) -> None:
    _operate(data_dir, lambda s: s.add_member(org, user, owner=owner))
    typer.echo(f"{user.lower()} is now {'an owner' if owner else 'a member'} of {org.lower()}")


@org_cli.command("set-policy")
def org_set_policy(
    org: str,
    visibilities: Annotated[
        str | None,
        typer.Option(help="Visibilities members may create packages with, e.g. private,internal."),
    ] = None,
    inherit: Annotated[
        bool | None,
        typer.Option("--inherit/--no-inherit", help="New packages inherit repository access."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    _operate(data_dir, lambda s: s.set_org_policy(org, visibilities=visibilities, inherit=inherit))
    typer.echo(f"updated {org.lower()}")


@team_cli.command("create")
def team_create(org: str, team: str, data_dir: DataDir = None) -> None:
    _operate(data_dir, lambda s: s.create_team(org, team))
    typer.echo(f"created team {org.lower()}/{team.lower()}")


@team_cli.command("add-member")
def team_add_member(org: str, team: str, user: str, data_dir: DataDir = None) -> None:
    _operate(data_dir, lambda s: s.add_team_member(org, team, user))
    typer.echo(f"added {user.lower()} to {org.lower()}/{team.lower()}")


@repo_cli.command("create")
def repo_create(
    name: Annotated[str, typer.Argument(help="OWNER/NAME")],
    private: Annotated[bool, typer.Option("--private")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a source repository that packages can link to."""
    _operate(data_dir, lambda s: s.create_repository(name, private=private))
    typer.echo(f"created repository {name.lower()}")


@repo_cli.command("grant")
def repo_grant(
    name: Annotated[str, typer.Argument(help="OWNER/NAME")],
    grantee: Annotated[str, typer.Argument(help="USER or ORG/TEAM")],
    role: Role,
    data_dir: DataDir = None,
) -> None:
    """Give a collaborator or a team a role on a source repository."""
    _operate(data_dir, lambda s: s.grant_repository(name, grantee, role))
    typer.echo(f"granted {role} on {name.lower()} to {grantee.lower()}")


@token_cli.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="The user the token acts for.")],
    scopes: Annotated[
        str, typer.Option(help="read:packages,write:packages,delete:packages (comma-separated)")
    ],
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d, 12h, 90m.")] = None,
    note: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a personal access token (classic). Prints only the token: it is shown once."""
    created = _operate(data_dir, lambda s: s.create_pat(user, scopes, expires=expires, note=note))
    typer.echo(created.token)


@token_cli.command("workflow")
def token_workflow(
    repository: Annotated[str, typer.Option(help="The source repository OWNER/NAME.")],
    permission: Annotated[str, typer.Option(help="read or write on packages.")] = "write",
    expires: Annotated[str | None, typer.Option(help="Lifetime (default 1h).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a workflow token bound to one source repository. Prints only the token."""
    created = _operate(
        data_dir,
        lambda s: s.create_workflow_token(repository, permission=permission, expires=expires),
    )
    typer.echo(created.token)


@token_cli.command("list")
def token_list(user: Annotated[str, typer.Option()], data_dir: DataDir = None) -> None:
    """A user's tokens (never the tokens themselves)."""
    records = _operate(data_dir, lambda s: s.list_tokens(user))
    typer.echo("id\tkind\tscopes\tnote\tcreated\texpires\tlast used\trevoked")
    for r in records:
        typer.echo(
            "\t".join(
                str(v or "-")
                for v in (
                    r.id,
                    r.kind,
                    ",".join(r.scopes),
                    r.note,
                    r.created_at.isoformat(timespec="seconds"),
                    r.expires_at and r.expires_at.isoformat(timespec="seconds"),
                    r.last_used_at and r.last_used_at.isoformat(timespec="seconds"),
                    r.revoked_at and r.revoked_at.isoformat(timespec="seconds"),
                )
            )
        )


@token_cli.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="The token's id (see `token list`) or the token.")],
    data_dir: DataDir = None,
) -> None:
    _operate(data_dir, lambda s: s.revoke_token(token))
    typer.echo("revoked")


@package_cli.command("set-visibility")
def package_set_visibility(
    name: str,
    visibility: Annotated[str, typer.Argument(help="public, internal or private")],
    data_dir: DataDir = None,
) -> None:
    """Change a package's visibility (a public package stays public)."""
    _operate(data_dir, lambda s: s.set_visibility(name, visibility))
    typer.echo(f"{name} is now {visibility}")


@package_cli.command("grant")
def package_grant(
    name: str,
    grantee: Annotated[str, typer.Argument(help="USER or ORG/TEAM")],
    role: Role,
    data_dir: DataDir = None,
) -> None:
    _operate(data_dir, lambda s: s.grant_package(name, grantee, role))
    typer.echo(f"granted {role} on {name} to {grantee.lower()}")


@package_cli.command("grant-actions")
def package_grant_actions(
    name: str,
    repository: Annotated[str, typer.Argument(help="OWNER/NAME")],
    role: Role,
    data_dir: DataDir = None,
) -> None:
    """Give a source repository's workflow tokens a role on the package (Actions access)."""
    _operate(data_dir, lambda s: s.grant_actions(name, repository, role))
    typer.echo(f"granted {role} on {name} to workflows of {repository.lower()}")


@package_cli.command("link")
def package_link(
    name: str,
    repository: Annotated[str, typer.Argument(help="OWNER/NAME")],
    inherit: Annotated[
        bool, typer.Option("--inherit", help="Inherit the repository's access.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Link a package to its source repository."""
    _operate(data_dir, lambda s: s.link_package(name, repository, inherit=inherit))
    typer.echo(f"linked {name} to {repository.lower()}")
