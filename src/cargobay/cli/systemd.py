"""``cargobay systemd-unit``: a hardened systemd service for this installation."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from cargobay.cli.common import EXIT_CONFIG, fail

#: Longer than the server's bounded graceful stop (``shutdown_timeout``, 25 s by default), so
#: systemd never SIGKILLs a server that is still letting in-flight requests finish.
STOP_TIMEOUT_SECONDS = 90

_UNIT = """\
# cargobay as a systemd service. Install:
#   useradd --system --home-dir {data_dir} --shell /usr/sbin/nologin {user}
#   {command} systemd-unit > /etc/systemd/system/cargobay.service
#   systemctl daemon-reload && systemctl enable --now cargobay
# Settings: {environment_file} (CARGOBAY_NAME=value lines) or the TOML file in CARGOBAY_CONFIG.
[Unit]
Description=cargobay container registry
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
Environment=CARGOBAY_DATA_DIR={data_dir}
EnvironmentFile=-{environment_file}
ExecStart={exec_serve}
# SIGTERM: stop accepting, let in-flight requests finish (bounded), then exit.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={stop_timeout}
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

# The registry writes only its data directory.
StateDirectory={state_directory}
StateDirectoryMode=0750
ReadWritePaths={data_dir}
ProtectSystem=strict
ProtectHome={protect_home}
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
UMask=0027

[Install]
WantedBy=multi-user.target
"""


def render_unit(
    *,
    command: list[str],
    user: str,
    data_dir: Path,
    environment_file: Path,
    host: str,
    port: int,
    base_url: str | None = None,
) -> str:
    """The unit text; ``data_dir`` must be under ``/var/lib`` (systemd creates it, owned by
    ``user``, as the unit's state directory)."""
    serve = [*command, "serve", "--host", host, "--port", str(port)]
    if base_url:
        serve += ["--base-url", base_url]
    return _UNIT.format(
        command=shlex.join(command),
        user=user,
        data_dir=data_dir,
        state_directory=data_dir.relative_to("/var/lib"),
        environment_file=environment_file,
        exec_serve=shlex.join(serve),
        stop_timeout=STOP_TIMEOUT_SECONDS,
        # An installation under /home or /root must stay readable to start at all.
        protect_home="read-only" if command[0].startswith(("/home/", "/root/")) else "yes",
    )


def systemd_unit(
    user: Annotated[str, typer.Option(help="The dedicated system user it runs as.")] = "cargobay",
    data_dir: Annotated[Path, typer.Option(help="The data directory (under /var/lib).")] = Path(
        "/var/lib/cargobay"
    ),
    environment_file: Annotated[
        Path, typer.Option(help="Optional file of CARGOBAY_* settings.")
    ] = Path("/etc/cargobay/cargobay.env"),
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 5000,
    base_url: Annotated[
        str | None, typer.Option(help="The address clients use (needed on 0.0.0.0).")
    ] = None,
) -> None:
    """Print a hardened systemd unit for this installation (dedicated user, read-only system,
    writable data directory only, restart on failure, a stop timeout above the graceful stop)."""
    if not data_dir.is_absolute() or not data_dir.is_relative_to("/var/lib"):
        fail(
            f"--data-dir {data_dir}: the unit's data directory must be under /var/lib", EXIT_CONFIG
        )
    python = Path(sys.executable).absolute()
    script = python.parent / "cargobay"
    command = [str(script)] if script.exists() else [str(python), "-m", "cargobay"]
    typer.echo(
        render_unit(
            command=command,
            user=user,
            data_dir=data_dir,
            environment_file=environment_file,
            host=host,
            port=port,
            base_url=base_url,
        ),
        nl=False,
    )
