"""``cargobay webhook``: webhooks of an organization, a user or the whole site, for operators
(the same rules as the REST API: a receiver URL naming a non-public address is refused unless
``webhook_allowed_hosts`` allows it)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cargobay.cli.common import DataDir, fail, operate_with

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cargobay.metadata.sql import SqlMetadata
    from cargobay.services.webhooks import Target, Webhooks
    from cargobay.settings import Settings

T = TypeVar("T")

webhook_cli = typer.Typer(
    help="Webhooks: signed deliveries of package events to an HTTP receiver.",
    no_args_is_help=True,
)

Org = Annotated[str | None, typer.Option("--org", help="An organization's hooks.")]
User = Annotated[str | None, typer.Option("--user", help="A user's hooks.")]
Site = Annotated[bool, typer.Option("--site", help="The site's hooks (every event).")]
HookId = Annotated[int, typer.Argument(help="The hook's id (see `webhook list`).")]


def _build(metadata: SqlMetadata, settings: Settings) -> Webhooks:
    from cargobay.auth.sealing import load_or_create_keys
    from cargobay.services.webhook_targets import AllowList
    from cargobay.services.webhooks import Webhooks

    allowed = AllowList.parse(settings.webhook_allowed_hosts)
    box = load_or_create_keys(settings.resolved_secret_key_file)
    return Webhooks(metadata.webhooks, metadata.accounts, allowed=allowed, box=box)


def _run(data_dir: Path | None, action: Callable[[Webhooks], Coroutine[Any, Any, T]]) -> T:
    return operate_with(data_dir, _build, action)


def _target(org: str | None, user: str | None, site: bool) -> Target:
    from cargobay.services.webhooks import Target

    if sum((org is not None, user is not None, site)) != 1:
        fail("name exactly one of --org ORG, --user LOGIN or --site")
    if org is not None:
        return Target("org", org)
    if user is not None:
        return Target("user", user)
    return Target("site")


@webhook_cli.command("add")
def webhook_add(
    url: Annotated[str, typer.Argument(help="The receiver: an http:// or https:// URL.")],
    org: Org = None,
    user: User = None,
    site: Site = False,
    secret: Annotated[
        str | None,
        typer.Option(envvar="CARGOBAY_WEBHOOK_SECRET", help="Signs deliveries (or the env var)."),
    ] = None,
    content_type: Annotated[str, typer.Option(help="json or form.")] = "json",
    event: Annotated[
        list[str] | None,
        typer.Option(help="registry_package (default), package, cargobay_package or *; repeat."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Add a webhook; prints its id."""
    from cargobay.services.webhooks import OPERATOR, HookSpec

    target = _target(org, user, site)
    spec = HookSpec(
        url=url,
        secret=secret,
        content_type=content_type,
        events=tuple(event) if event else None,
        active=True,
    )
    hook = _run(data_dir, lambda s: s.create(OPERATOR, target, spec))
    typer.echo(str(hook.id))


@webhook_cli.command("list")
def webhook_list(
    org: Org = None, user: User = None, site: Site = False, data_dir: DataDir = None
) -> None:
    """The hooks (the secret is never shown)."""
    from cargobay.services.webhooks import OPERATOR

    target = _target(org, user, site)
    hooks = _run(data_dir, lambda s: s.hooks(OPERATOR, target))
    typer.echo("id\tactive\tcontent_type\tevents\tsecret\turl")
    for h in hooks:
        typer.echo(
            f"{h.id}\t{'yes' if h.active else 'no'}\t{h.content_type}\t{','.join(h.events)}"
            f"\t{'********' if h.secret else '-'}\t{h.url}"
        )


@webhook_cli.command("remove")
def webhook_remove(
    hook_id: HookId,
    org: Org = None,
    user: User = None,
    site: Site = False,
    data_dir: DataDir = None,
) -> None:
    """Remove a hook and its queued and logged deliveries."""
    from cargobay.services.webhooks import OPERATOR

    target = _target(org, user, site)
    _run(data_dir, lambda s: s.delete(OPERATOR, target, hook_id))
    typer.echo(f"removed webhook {hook_id}")


@webhook_cli.command("deliveries")
def webhook_deliveries(
    hook_id: HookId,
    org: Org = None,
    user: User = None,
    site: Site = False,
    limit: Annotated[int, typer.Option(help="How many, newest first (max 100).")] = 30,
    redeliver: Annotated[
        int | None, typer.Option(help="Queue this delivery (id) again instead of listing.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The hook's delivery log, newest first: id, GUID, event, state, attempts, status."""
    from cargobay.services.webhooks import OPERATOR

    target = _target(org, user, site)
    if redeliver is not None:
        _run(data_dir, lambda s: s.redeliver(OPERATOR, target, hook_id, redeliver))
        typer.echo(f"queued delivery {redeliver} again")
        return
    found = _run(
        data_dir, lambda s: s.deliveries(OPERATOR, target, hook_id, before=None, limit=limit)
    )
    typer.echo("id\tguid\tevent\taction\tstate\tattempts\tstatus_code\tduration\tstatus")
    for d in found:
        duration = f"{d.duration:.3f}s" if d.duration is not None else "-"
        typer.echo(
            f"{d.id}\t{d.guid}\t{d.event}\t{d.action or '-'}\t{d.state}\t{d.attempts}"
            f"\t{d.status_code or '-'}\t{duration}\t{d.status or '-'}"
        )
