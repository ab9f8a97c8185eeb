"""``cargobay quota``: namespaces' storage quotas (set, show, clear) and the recount of their
usage counters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cargobay.cli.common import DataDir, registry_settings

if TYPE_CHECKING:
    from cargobay.services.quotas import QuotaService, QuotaView

quota_cli = typer.Typer(
    help="Storage quotas of users and organizations: a push that would pass one is refused.",
    no_args_is_help=True,
)

Owner = Annotated[str, typer.Argument(help="A user or an organization, e.g. acme")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
T = TypeVar("T")


def _run(data_dir: Path | None, action: Callable[[QuotaService], Coroutine[Any, Any, T]]) -> T:
    from cargobay.app import build_metadata
    from cargobay.errors import CargobayError
    from cargobay.services.quotas import QuotaService

    metadata = build_metadata(registry_settings(data_dir))
    service = QuotaService(metadata.quotas, metadata.accounts)
    try:
        return asyncio.run(action(service))
    except CargobayError as exc:
        typer.echo(f"cargobay: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()


def _show(view: QuotaView, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(asdict(view) | {"percent_used": view.percent}))
    else:
        typer.echo(view.describe())


@quota_cli.command("set")
def quota_set(
    owner: Owner,
    size: Annotated[str, typer.Argument(help="The limit: 10GB, 500MiB, 1.5TB or bytes")],
    warn: Annotated[
        int | None,
        typer.Option("--warn", min=1, max=100, help="Warn once PERCENT of the quota is used."),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Set OWNER's storage quota (pushes that would pass it are refused)."""
    from cargobay.services.quotas import parse_size

    try:
        limit = parse_size(size)
    except ValueError as exc:
        typer.echo(f"cargobay: {exc}", err=True)
        raise typer.Exit(2) from None
    _show(_run(data_dir, lambda s: s.set(owner, limit, warn)), as_json)


@quota_cli.command("show")
def quota_show(owner: Owner, as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Show OWNER's usage and quota."""
    _show(_run(data_dir, lambda s: s.show(owner)), as_json)


@quota_cli.command("clear")
def quota_clear(owner: Owner, as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Remove OWNER's quota."""
    _show(_run(data_dir, lambda s: s.clear(owner)), as_json)


@quota_cli.command("recount")
def quota_recount(
    owner: Annotated[str | None, typer.Argument(help="One namespace (default: every one)")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Recount usage counters from what the namespaces store, and correct any that differ
    (safe while the registry serves pushes)."""
    corrections = _run(data_dir, lambda s: s.recount(owner))
    wrong = {name: delta for name, delta in corrections.items() if delta}
    if as_json:
        typer.echo(json.dumps({"checked": len(corrections), "corrected": wrong}))
        return
    for name, delta in sorted(wrong.items()):
        typer.echo(f"{name}: corrected by {delta:+d} bytes")
    typer.echo(f"recount: {len(corrections)} namespaces checked, {len(wrong)} corrected")
