"""``cargobay user``: site users."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, fail, operate

user_cli = typer.Typer(help="Users.", no_args_is_help=True)


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
    password = _read_password() if password_stdin else None
    operate(
        data_dir,
        lambda s: s.create_user(name, email=email, password=password, site_admin=admin),
    )
    typer.echo(f"created user {name.lower()}")


@user_cli.command("set-password")
def user_set_password(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Set or reset a user's web sign-in password (8 to 256 characters, not a common one)."""
    if not password_stdin:
        fail("give the new password on stdin with --password-stdin")
    password = _read_password()
    operate(data_dir, lambda s: s.set_password(name, password))
    typer.echo(f"set the password of {name.lower()}")


@user_cli.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """Every user: login, site administrator, suspended, whether they have a password."""
    users = operate(data_dir, lambda s: s.users())
    typer.echo("login\tsite admin\tsuspended\tpassword\temail")
    for u in users:
        flags = (u.site_admin, u.suspended, u.password_hash is not None)
        typer.echo("\t".join([u.login, *("yes" if f else "no" for f in flags), u.email or "-"]))


def _read_password() -> str:
    """One line from stdin, without its line ending."""
    return sys.stdin.readline().rstrip("\r\n")


@user_cli.command("suspend")
def user_suspend(name: str, data_dir: DataDir = None) -> None:
    """Suspend a user: every token of theirs stops working."""
    operate(data_dir, lambda s: s.set_suspended(name, True))
    typer.echo(f"suspended {name.lower()}")


@user_cli.command("unsuspend")
def user_unsuspend(name: str, data_dir: DataDir = None) -> None:
    operate(data_dir, lambda s: s.set_suspended(name, False))
    typer.echo(f"unsuspended {name.lower()}")
