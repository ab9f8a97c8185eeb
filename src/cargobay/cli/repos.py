"""``cargobay repo``: source repositories that packages link to."""

from __future__ import annotations

from typing import Annotated

import typer

from cargobay.cli.common import DataDir, Role, operate
from cargobay.cli.trust import trust_cli

repo_cli = typer.Typer(help="Source repositories that packages link to.", no_args_is_help=True)
repo_cli.add_typer(trust_cli, name="trust")


@repo_cli.command("create")
def repo_create(
    name: Annotated[str, typer.Argument(help="OWNER/NAME")],
    private: Annotated[bool, typer.Option("--private")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a source repository that packages can link to."""
    operate(data_dir, lambda s: s.create_repository(name, private=private))
    typer.echo(f"created repository {name.lower()}")


@repo_cli.command("grant")
def repo_grant(
    name: Annotated[str, typer.Argument(help="OWNER/NAME")],
    grantee: Annotated[str, typer.Argument(help="USER or ORG/TEAM")],
    role: Role,
    data_dir: DataDir = None,
) -> None:
    """Give a collaborator or a team a role on a source repository."""
    operate(data_dir, lambda s: s.grant_repository(name, grantee, role))
    typer.echo(f"granted {role} on {name.lower()} to {grantee.lower()}")
