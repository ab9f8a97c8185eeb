"""``cargobay fsck``: check that the metadata and the blob store agree, online.

Exit status: 0 when nothing is wrong (with ``--repair``: when nothing is left that needs the
operator), 1 when problems were found (with ``--repair``: some could not be repaired, or a
garbage collection was running), 2 for a configuration mistake.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cargobay.cli.common import DataDir, require_registry, resolve_for

if TYPE_CHECKING:
    from cargobay.services.fsck import FsckService
    from cargobay.services.fsck_report import FsckReport


def fsck(
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Read every blob back and check its digest (slow)."),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Drop metadata of lost bytes no version needs, remove corrupt bytes (the"
            " registry answers BLOB_UNKNOWN for them until they are pushed again), correct"
            " sizes, hand orphans to the garbage collector; report what can't be repaired.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Check the metadata against the blob store: every known blob is stored with the right
    size, every manifest hashes to its digest, and no bytes are orphaned."""
    from cargobay.app import build_blob_store, build_metadata
    from cargobay.errors import CargobayError
    from cargobay.services.fsck import FsckService

    resolved = resolve_for(data_dir=data_dir)
    require_registry(resolved)
    settings = resolved.settings
    metadata = build_metadata(settings)
    service = FsckService(metadata.fsck, metadata.gc, build_blob_store(settings))
    try:
        if not as_json and sys.stderr.isatty():
            report = _with_progress(service, verify, repair)
        else:
            report = asyncio.run(service.run(verify=verify, repair=repair))
    except CargobayError as exc:
        typer.echo(f"cargobay: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()
    typer.echo(json.dumps(report.as_dict()) if as_json else report.summary())
    if not report.clean:
        raise typer.Exit(1)


def _with_progress(service: FsckService, verify: bool, repair: bool) -> FsckReport:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("starting", total=None)

    def tell(phase: str, done: int, total: int | None) -> None:
        bar.update(task, description=phase, completed=done, total=total)

    with bar:
        return asyncio.run(service.run(verify=verify, repair=repair, progress=tell))
