"""``cargobay user``: site users."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, operate

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
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    operate(
        data_dir,
        lambda s: s.create_user(name, email=email, password=password, site_admin=admin),
    )
    typer.echo(f"created user {name.lower()}")


@user_cli.command("suspend")
def user_suspend(name: str, data_dir: DataDir = None) -> None:
    """Suspend a user: every token of theirs stops working."""
    operate(data_dir, lambda s: s.set_suspended(name, True))
    typer.echo(f"suspended {name.lower()}")


@user_cli.command("unsuspend")
def user_unsuspend(name: str, data_dir: DataDir = None) -> None:
    operate(data_dir, lambda s: s.set_suspended(name, False))
    typer.echo(f"unsuspended {name.lower()}")
