"""``cargobay gc``: run the garbage collector once, online (the registry keeps serving)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from cargobay.cli.common import DataDir, registry_settings

if TYPE_CHECKING:
    from cargobay.services.gc import GcReport, GcService

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90``, ``1.5s``, ``10m``, ``2h``, ``7d`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration (e.g. 90s, 10m, 2h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be removed.")
    ] = False,
    grace: Annotated[
        str | None,
        typer.Option(
            help="Keep what became unreferenced (or was uploaded) less than this long ago,"
            " e.g. 30m, 2h, 1d (default: the gc_grace setting, 1 day)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Remove blobs nothing references any more, expired upload data and orphaned bytes,
    while the registry keeps serving pushes and pulls."""
    from cargobay.app import build_blob_store, build_gc, build_metadata, build_registry
    from cargobay.errors import CargobayError

    grace_seconds = parse_duration(grace) if grace is not None else None
    settings = registry_settings(data_dir)
    metadata = build_metadata(settings)
    store = build_blob_store(settings)
    service = build_gc(settings, metadata, store, build_registry(settings, metadata, store))
    show = not as_json and sys.stderr.isatty()
    try:
        if show:
            report = _with_progress(service, dry_run, grace_seconds)
        else:
            report = asyncio.run(service.run_once(dry_run=dry_run, grace=grace_seconds))
    except CargobayError as exc:
        typer.echo(f"cargobay: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        typer.echo(report.summary())


def _with_progress(service: GcService, dry_run: bool, grace: float | None) -> GcReport:
    """Run with a live display on the terminal: phase, counts, bytes and the rate."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from cargobay.services.gc import format_size

    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<10}"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("starting", total=None, counts="")
    started = time.monotonic()

    def tell(phase: str, report: GcReport, total: int | None) -> None:
        rate = report.total_bytes / max(time.monotonic() - started, 1e-6)
        bar.update(
            task,
            description=phase,
            counts=(
                f"{report.blobs_deleted + report.orphans_deleted} removed,"
                f" {report.blobs_checked} candidates checked,"
                f" {report.store_blobs_listed} stored blobs listed,"
                f" {format_size(report.total_bytes)} ({format_size(rate)}/s)"
            ),
        )

    with bar:
        return asyncio.run(service.run_once(dry_run=dry_run, grace=grace, progress=tell))
