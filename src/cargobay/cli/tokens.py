"""``cargobay token``: personal access tokens and workflow tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from cargobay.cli.common import DataDir, operate

token_cli = typer.Typer(help="Personal access tokens and workflow tokens.", no_args_is_help=True)


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
    created = operate(data_dir, lambda s: s.create_pat(user, scopes, expires=expires, note=note))
    typer.echo(created.token)


@token_cli.command("workflow")
def token_workflow(
    repository: Annotated[str, typer.Option(help="The source repository OWNER/NAME.")],
    permission: Annotated[str, typer.Option(help="read or write on packages.")] = "write",
    expires: Annotated[str | None, typer.Option(help="Lifetime (default 1h).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a workflow token bound to one source repository. Prints only the token."""
    created = operate(
        data_dir,
        lambda s: s.create_workflow_token(repository, permission=permission, expires=expires),
    )
    typer.echo(created.token)


@token_cli.command("list")
def token_list(user: Annotated[str, typer.Option()], data_dir: DataDir = None) -> None:
    """A user's tokens (never the tokens themselves)."""
    records = operate(data_dir, lambda s: s.list_tokens(user))
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
    operate(data_dir, lambda s: s.revoke_token(token))
    typer.echo("revoked")
