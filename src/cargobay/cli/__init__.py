"""The ``cargobay`` command: one module per command group, put together here.

``serve``/``migrate`` run the registry (:mod:`.serving`); ``gc`` collects garbage (:mod:`.gc`);
the operator groups (``user``, ``org``, ``team``, ``repo``, ``token``, ``package``) act on the
configured database through the services (:mod:`.common` resolves settings and runs a use case).
"""

from __future__ import annotations

import typer

from cargobay.cli import (
    gc,
    immutable,
    orgs,
    packages,
    repos,
    serving,
    teams,
    tokens,
    usage,
    users,
)

cli = typer.Typer(
    help="cargobay: a self-hosted OCI container registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.command()(serving.migrate)
cli.command()(serving.serve)
cli.command()(gc.gc)
cli.command()(usage.usage)
for _name, _group in (
    ("user", users.user_cli),
    ("org", orgs.org_cli),
    ("team", teams.team_cli),
    ("repo", repos.repo_cli),
    ("token", tokens.token_cli),
    ("package", packages.package_cli),
    ("immutable-tags", immutable.immutable_cli),
):
    cli.add_typer(_group, name=_name)


def main() -> None:
    cli()
