"""``cargobay org``: organizations."""

from __future__ import annotations

from typing import Annotated

import typer

from cargobay.cli.common import DataDir, operate

org_cli = typer.Typer(help="Organizations.", no_args_is_help=True)


@org_cli.command("create")
def org_create(
    name: str,
    owner: Annotated[str, typer.Option(help="The first owner (a user).")],
    data_dir: DataDir = None,
) -> None:
    """Create an organization (a namespace) with its first owner."""
    operate(data_dir, lambda s: s.create_org(name, owner))
    typer.echo(f"created organization {name.lower()}")


@org_cli.command("add-member")
def org_add_member(
    org: str,
    user: str,
    owner: Annotated[bool, typer.Option("--owner", help="Add as an owner.")] = False,
    data_dir: DataDir = None,
) -> None:
    operate(data_dir, lambda s: s.add_member(org, user, owner=owner))
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
    operate(data_dir, lambda s: s.set_org_policy(org, visibilities=visibilities, inherit=inherit))
    typer.echo(f"updated {org.lower()}")
