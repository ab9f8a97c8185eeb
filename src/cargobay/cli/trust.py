"""``cargobay repo trust``: the trust policies of a source repository (trusted publishing: which
CI jobs' OIDC ID tokens ``/token`` exchanges for the repository's workflow tokens)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cargobay.cli.common import DataDir, operate_with

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cargobay.metadata.sql import SqlMetadata
    from cargobay.services.trusted_publishing import TrustedPublishing
    from cargobay.settings import Settings

T = TypeVar("T")

trust_cli = typer.Typer(
    help="Trust policies: which CI jobs may exchange their OIDC ID token for a workflow token.",
    no_args_is_help=True,
)

Repository = Annotated[str, typer.Argument(help="OWNER/NAME")]


def _build(metadata: SqlMetadata, settings: Settings) -> TrustedPublishing:
    from cargobay.app import build_trusted_publishing
    from cargobay.services.accounts import AccountService
    from cargobay.services.administration import Administration

    accounts = AccountService(metadata, workflow_token_ttl=settings.workflow_token_ttl)
    return build_trusted_publishing(settings, metadata, accounts, Administration(accounts))


def _run(data_dir: Path | None, action: Callable[[TrustedPublishing], Coroutine[Any, Any, T]]) -> T:
    return operate_with(data_dir, _build, action)


@trust_cli.command("add")
def trust_add(
    repository: Repository,
    issuer: Annotated[
        str, typer.Option(help="The issuer URL, one of CARGOBAY_OIDC_ISSUERS, exactly.")
    ],
    claim: Annotated[
        list[str],
        typer.Option(help="NAME=PATTERN (exact, or a glob with * ? [...]); repeat: all must hold."),
    ],
    audience: Annotated[
        str | None, typer.Option(help="The aud the ID token must have (default: base URL).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Trust ID tokens of ISSUER whose claims match every --claim: their jobs get workflow
    tokens of the repository."""
    from cargobay.services.trust_policies import parse_conditions

    policy = _run(data_dir, lambda s: s.add(repository, issuer, audience, parse_conditions(claim)))
    typer.echo(f"added trust policy {policy.id} to {policy.repository}")


@trust_cli.command("list")
def trust_list(repository: Repository, data_dir: DataDir = None) -> None:
    """The repository's trust policies."""
    policies = _run(data_dir, lambda s: s.policies(repository))
    typer.echo("id\tissuer\taudience\tclaims")
    for p in policies:
        claims = " ".join(f"{name}={pattern}" for name, pattern in p.claims)
        typer.echo(f"{p.id}\t{p.issuer}\t{p.audience or '(base URL)'}\t{claims}")


@trust_cli.command("remove")
def trust_remove(
    repository: Repository,
    policy_id: Annotated[int, typer.Argument(help="The policy's id (see `repo trust list`).")],
    data_dir: DataDir = None,
) -> None:
    """Remove a trust policy: its jobs get no new workflow tokens (issued ones run out)."""
    _run(data_dir, lambda s: s.remove(repository, policy_id))
    typer.echo(f"removed trust policy {policy_id} of {repository.lower()}")
