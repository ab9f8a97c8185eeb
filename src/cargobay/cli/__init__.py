"""The ``cargobay`` command: one module per command group, put together here.

``serve``/``migrate`` run the registry (:mod:`.serving`); ``gc`` collects garbage (:mod:`.gc`);
``fsck`` checks metadata against storage (:mod:`.fsck`); ``backup``/``restore`` copy the
embedded default (:mod:`.backup`); ``ci-login`` signs a CI job in (:mod:`.ci_login`); ``tls
init`` makes a local CA and certificate (:mod:`.tls`); the operator groups (``user``, ``org``,
``team``, ``repo``, ``token``, ``package``, ``immutable-tags``, ``retention``, ``audit``,
``usage``, ``quota``, ``webhook``) act on the configured registry through the services
(:mod:`.common` resolves settings exactly as ``serve`` does and runs a use case); ``config``
shows and checks the settings; ``systemd-unit`` prints a service unit. Every mistake ends with
one line on stderr and a non-zero exit (2 for configuration).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cargobay.cli import (
    audit,
    backup,
    ci_login,
    config,
    fsck,
    gc,
    immutable,
    orgs,
    packages,
    quota,
    repos,
    retention,
    serving,
    systemd,
    teams,
    tls,
    tokens,
    usage,
    users,
    webhooks,
)

cli = typer.Typer(
    help="cargobay: a self-hosted OCI container registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"cargobay {version('cargobay')}")
        raise typer.Exit()


@cli.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """cargobay: a self-hosted OCI container registry."""


cli.command()(serving.migrate)
cli.command()(serving.serve)
cli.command("ci-login")(ci_login.ci_login)
cli.command("systemd-unit")(systemd.systemd_unit)
cli.command()(gc.gc)
cli.command()(fsck.fsck)
cli.command()(backup.backup)
cli.command()(backup.restore)
cli.command()(usage.usage)
for _name, _group in (
    ("user", users.user_cli),
    ("org", orgs.org_cli),
    ("team", teams.team_cli),
    ("repo", repos.repo_cli),
    ("token", tokens.token_cli),
    ("package", packages.package_cli),
    ("tls", tls.tls_cli),
    ("config", config.config_cli),
    ("audit", audit.audit_cli),
    ("immutable-tags", immutable.immutable_cli),
    ("retention", retention.retention_cli),
    ("webhook", webhooks.webhook_cli),
    ("quota", quota.quota_cli),
):
    cli.add_typer(_group, name=_name)


def main() -> None:
    cli()
