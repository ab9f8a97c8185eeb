"""``cargobay usage``: storage a namespace or a package uses."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, registry_settings


def usage(
    name: Annotated[str, typer.Argument(help="OWNER (a user or an organization) or OWNER/PACKAGE")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Storage used: each blob once (stored) and as pushed (each version's blobs counted for
    every version); deleted versions still in their restore window count."""
    from cargobay.app import build_metadata
    from cargobay.errors import CargobayError
    from cargobay.services.gc import format_size
    from cargobay.services.usage import UsageService

    metadata = build_metadata(registry_settings(data_dir))
    service = UsageService(None, metadata.package_records, metadata.accounts, metadata.usage)
    try:
        found = asyncio.run(service.operator_usage(name))
    except CargobayError as exc:
        typer.echo(f"cargobay: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()
    if as_json:
        typer.echo(json.dumps(asdict(found)))
    else:
        typer.echo(
            f"{name}: {format_size(found.stored)} stored, {format_size(found.as_pushed)} as pushed"
            f" ({found.blobs} blobs, {found.versions} versions)"
        )
