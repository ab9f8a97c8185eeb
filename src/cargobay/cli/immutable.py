"""``cargobay immutable-tags``: the tag patterns that make a package's tags immutable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cargobay.cli.common import DataDir, registry_settings

if TYPE_CHECKING:
    from cargobay.services.immutability import ImmutableTagService

immutable_cli = typer.Typer(
    help="Immutable tags: a tag matching a package's pattern can't be moved or deleted.",
    no_args_is_help=True,
)

Package = Annotated[str, typer.Argument(help="The package's registry name, e.g. acme/app")]
Patterns = Annotated[list[str], typer.Argument(help="Glob patterns, e.g. 'v*' 'release-*'")]


def _run(
    data_dir: Path | None, action: Callable[[ImmutableTagService], Coroutine[Any, Any, list[str]]]
) -> list[str]:
    from cargobay.app import build_metadata
    from cargobay.errors import CargobayError
    from cargobay.services.immutability import ImmutableTagService

    settings = registry_settings(data_dir)
    metadata = build_metadata(settings)
    service = ImmutableTagService(None, metadata.package_records, metadata.immutable)
    try:
        return asyncio.run(action(service))
    except CargobayError as exc:
        typer.echo(f"cargobay: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()


def _show(name: str, patterns: list[str]) -> None:
    if patterns:
        typer.echo(f"{name}: immutable tags {' '.join(patterns)}")
    else:
        typer.echo(f"{name}: no immutable tags")


@immutable_cli.command("list")
def immutable_list(name: Package, data_dir: DataDir = None) -> None:
    """Show a package's immutable tag patterns."""
    _show(name, _run(data_dir, lambda s: s.operator_patterns(name)))


@immutable_cli.command("add")
def immutable_add(name: Package, patterns: Patterns, data_dir: DataDir = None) -> None:
    """Make tags matching PATTERNS immutable."""
    _show(name, _run(data_dir, lambda s: s.operator_change(name, add=patterns)))


@immutable_cli.command("remove")
def immutable_remove(name: Package, patterns: Patterns, data_dir: DataDir = None) -> None:
    """Drop PATTERNS from a package's immutable tag rules."""
    _show(name, _run(data_dir, lambda s: s.operator_change(name, remove=patterns)))
