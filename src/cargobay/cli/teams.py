"""``cargobay team``: teams inside organizations."""

from __future__ import annotations

import typer

from cargobay.cli.common import DataDir, operate

team_cli = typer.Typer(help="Teams inside organizations.", no_args_is_help=True)


@team_cli.command("create")
def team_create(org: str, team: str, data_dir: DataDir = None) -> None:
    operate(data_dir, lambda s: s.create_team(org, team))
    typer.echo(f"created team {org.lower()}/{team.lower()}")


@team_cli.command("add-member")
def team_add_member(org: str, team: str, user: str, data_dir: DataDir = None) -> None:
    operate(data_dir, lambda s: s.add_team_member(org, team, user))
    typer.echo(f"added {user.lower()} to {org.lower()}/{team.lower()}")
