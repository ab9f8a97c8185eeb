"""``cargobay config``: the effective settings and where each comes from, a check that starts
nothing, and the generated reference (``docs/configuration.md``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cargobay.cli.common import DataDir, check_data_dir, resolve_for
from cargobay.configuration import CONFIG_VARIABLE, PREFIX, masked
from cargobay.settings import Settings

config_cli = typer.Typer(help="Settings: show, check, reference.", no_args_is_help=True)

ConfigFile = Annotated[
    Path | None,
    typer.Argument(help=f"A TOML settings file (default: ${CONFIG_VARIABLE}, if set)."),
]


def _use_file(file: Path | None) -> None:
    if file is not None:
        os.environ[CONFIG_VARIABLE] = str(file)


@config_cli.command("show")
def config_show(file: ConfigFile = None, data_dir: DataDir = None) -> None:
    """Print the effective settings as TOML, each with where it came from (secrets masked)."""
    _use_file(file)
    resolved = resolve_for(data_dir=data_dir)
    for name in Settings.model_fields:
        value = getattr(resolved.settings, name)
        shown = masked(name, value)
        if isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, int | float) or shown == "none":
            pass
        else:
            shown = '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
        typer.echo(f"{name} = {shown}  # {resolved.sources.get(name, 'default')}")


@config_cli.command("check")
def config_check(file: ConfigFile = None, data_dir: DataDir = None) -> None:
    """Validate the settings file and the environment without starting anything: exit 0 and
    one line when they are fine, exit 2 and the mistake when not."""
    from cargobay.cli.serving import check_public_address

    _use_file(file)
    resolved = resolve_for(data_dir=data_dir)
    check_public_address(resolved)
    check_data_dir(resolved, creating=True)  # what serve would refuse
    origins = sorted(
        {
            "the environment" if source.startswith(PREFIX) else source.rsplit(":", 1)[0]
            for source in resolved.sources.values()
        }
    )
    typer.echo(
        f"configuration is valid: {len(resolved.sources)} setting(s) set"
        + (f" (from {', '.join(origins)})" if origins else "")
        + ", the rest are defaults"
    )


@config_cli.command("reference")
def config_reference() -> None:
    """Print the settings reference in Markdown (what docs/configuration.md holds)."""
    from cargobay.settings_reference import render

    typer.echo(render(), nl=False)
