"""``cargobay package``: package visibility, access and links."""

from __future__ import annotations

from typing import Annotated

import typer

from cargobay.cli.common import DataDir, Role, operate

package_cli = typer.Typer(help="Package visibility, access and links.", no_args_is_help=True)


@package_cli.command("set-visibility")
def package_set_visibility(
    name: str,
    visibility: Annotated[str, typer.Argument(help="public, internal or private")],
    data_dir: DataDir = None,
) -> None:
    """Change a package's visibility (a public package stays public)."""
    operate(data_dir, lambda s: s.set_visibility(name, visibility))
    typer.echo(f"{name} is now {visibility}")


@package_cli.command("grant")
def package_grant(
    name: str,
    grantee: Annotated[str, typer.Argument(help="USER or ORG/TEAM")],
    role: Role,
    data_dir: DataDir = None,
) -> None:
    operate(data_dir, lambda s: s.grant_package(name, grantee, role))
    typer.echo(f"granted {role} on {name} to {grantee.lower()}")


@package_cli.command("grant-actions")
def package_grant_actions(
    name: str,
    repository: Annotated[str, typer.Argument(help="OWNER/NAME")],
    role: Role,
    data_dir: DataDir = None,
) -> None:
    """Give a source repository's workflow tokens a role on the package (Actions access)."""
    operate(data_dir, lambda s: s.grant_actions(name, repository, role))
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
    operate(data_dir, lambda s: s.link_package(name, repository, inherit=inherit))
    typer.echo(f"linked {name} to {repository.lower()}")
