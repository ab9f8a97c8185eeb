"""``cargobay audit``: the audit log for operators."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, registry_settings

audit_cli = typer.Typer(help="The audit log: who did what, and when.", no_args_is_help=True)


def parse_since(value: str | None) -> datetime | None:
    """``2026-12-01``, an ISO 8601 time, or a duration back from now (``30d``, ``12h``)."""
    from cargobay.services.accounts import InvalidInput, parse_duration

    if value is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(value)
    except InvalidInput:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: use a date (2026-12-01), an ISO 8601 time or a duration (30d, 12h)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_cli.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option(help="Only entries from then on: a date, an ISO 8601 time or e.g. 30d."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (GitHub's entry shape).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Every audit-log entry since ``--since``, oldest first."""
    from cargobay.app import build_metadata
    from cargobay.services.audit import AuditLog, entry

    start = parse_since(since)
    settings = registry_settings(data_dir)
    metadata = build_metadata(settings)
    try:
        audit = AuditLog(metadata.events, metadata.accounts, retention=settings.audit_retention)
        found = asyncio.run(audit.export(start))
    finally:
        metadata.close()
    for event in found:
        if as_json:
            typer.echo(json.dumps(entry(event), sort_keys=True))
            continue
        actor = event.actor.login or event.names.get("workflow_repository") or "-"
        typer.echo(
            "\t".join(
                (
                    event.at.isoformat(timespec="seconds"),
                    event.action.value,
                    actor,
                    event.actor.address or "-",
                    event.package or event.names.get("namespace") or "-",
                    event.digest or "-",
                )
            )
        )
