"""``cargobay retention``: retention policies of packages and the defaults of users and
organizations, and the cleanup they drive (``apply``, with ``--dry-run`` to only list)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cargobay.cli.common import DataDir, registry_settings

if TYPE_CHECKING:
    from cargobay.services.retention import Effective, RetentionReport, RetentionService

T = TypeVar("T")

retention_cli = typer.Typer(
    help="Retention policies: which old versions the periodic cleanup removes.",
    no_args_is_help=True,
)

Target = Annotated[
    str,
    typer.Argument(help="A package (OWNER/NAME, e.g. acme/app) or a user or organization"),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(data_dir: Path | None, action: Callable[[RetentionService], Coroutine[Any, Any, T]]) -> T:
    from cargobay.app import build_metadata, build_retention
    from cargobay.errors import CargobayError

    settings = registry_settings(data_dir)
    metadata = build_metadata(settings)
    service = build_retention(settings, metadata)
    try:
        return asyncio.run(action(service))
    except CargobayError as exc:
        typer.echo(f"cargobay: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        metadata.close()


def _show(name: str, found: Effective, as_json: bool) -> None:
    policy = found.policy
    if as_json:
        body = None
        if policy is not None:
            body = {
                "untagged_days": policy.untagged_days,
                "keep_tags": policy.keep_tags,
                "tag_patterns": list(policy.tag_patterns),
                "pulled_days": policy.pulled_days,
            }
        typer.echo(json.dumps({"target": name, "source": found.source, "policy": body}))
        return
    if policy is None:
        typer.echo(f"{name}: no retention policy")
        return
    rules = []
    if policy.untagged_days is not None:
        rules.append(f"untagged versions go after {policy.untagged_days} days")
    if policy.keep_tags is not None:
        rules.append(f"keep the {policy.keep_tags} most recent tags")
    if policy.tag_patterns:
        rules.append("keep tags " + " ".join(policy.tag_patterns))
    if policy.pulled_days is not None:
        rules.append(f"keep versions pulled within {policy.pulled_days} days")
    origin = " (the owner's default)" if found.source == "owner" and "/" in name else ""
    typer.echo(f"{name}{origin}: " + ("; ".join(rules) or "no rule"))


@retention_cli.command("show")
def retention_show(name: Target, as_json: Json = False, data_dir: DataDir = None) -> None:
    """Show the policy a package follows, or a user's or organization's default."""
    _show(name, _run(data_dir, lambda s: s.operator_get(name)), as_json)


@retention_cli.command("set")
def retention_set(
    name: Target,
    untagged_days: Annotated[
        int | None, typer.Option(help="Remove untagged versions older than this many days.")
    ] = None,
    keep_tags: Annotated[
        int | None, typer.Option(help="Keep this many most recent tags (others' versions go).")
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(help="Keep tags matching this glob, or RE2 regex after 're:' (repeatable)."),
    ] = None,
    pulled_days: Annotated[
        int | None, typer.Option(help="Keep versions pulled within this many days.")
    ] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Set the policy (every rule at once; a rule not given is off)."""
    from cargobay.ports.retention import RetentionPolicy

    policy = RetentionPolicy(
        untagged_days=untagged_days,
        keep_tags=keep_tags,
        tag_patterns=tuple(keep or ()),
        pulled_days=pulled_days,
    )
    _show(name, _run(data_dir, lambda s: s.operator_set(name, policy)), as_json)


@retention_cli.command("clear")
def retention_clear(name: Target, as_json: Json = False, data_dir: DataDir = None) -> None:
    """Drop the policy (a package then follows its owner's default)."""
    _show(name, _run(data_dir, lambda s: s.operator_clear(name)), as_json)


@retention_cli.command("apply")
def retention_apply(
    package: Annotated[
        str | None, typer.Argument(help="Only this package (default: every package)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Run the cleanup now. Removed versions are restorable for the restore window."""
    report = _run(data_dir, lambda s: s.run(dry_run=dry_run, name=package))
    _report(report, as_json)
    if report.failed:
        raise typer.Exit(1)


def _report(report: RetentionReport, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "packages": report.packages,
                    "removed": {
                        name: [
                            {
                                "id": r.id,
                                "digest": r.digest,
                                "kind": r.kind,
                                "tags": list(r.tags),
                                "pushed_at": r.pushed_at.isoformat(),
                                "reason": r.reason,
                            }
                            for r in removed
                        ]
                        for name, removed in report.removed.items()
                    },
                    "failed": report.failed,
                }
            )
        )
        return
    verb = "would remove" if report.dry_run else "removed"
    for name, removed in report.removed.items():
        for r in removed:
            tags = f" ({', '.join(r.tags)})" if r.tags else ""
            typer.echo(f"{name}@{r.digest}{tags}: {verb}, {r.reason}")
    for name, error in report.failed.items():
        typer.echo(f"cargobay: retention of {name} failed: {error}", err=True)
    typer.echo(
        f"retention{' (dry run)' if report.dry_run else ''}: {verb} {report.versions} versions"
        f" of {report.packages} packages"
    )
