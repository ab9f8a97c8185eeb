"""``cargobay systemd-unit``: a hardened unit that ``systemd-analyze verify`` accepts without a
warning, for the ``cargobay`` of this installation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import assert_one_clear_error, cargobay

from cargobay.cli.systemd import STOP_TIMEOUT_SECONDS

#: The server's bounded graceful stop; systemd must wait longer before it SIGKILLs.
GRACEFUL_STOP_SECONDS = 30


def unit(*args: str) -> dict[str, list[str]]:
    done = cargobay("systemd-unit", *args)
    assert done.returncode == 0, done.stderr
    entries: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    entries["_text"] = [done.stdout]
    return entries


def test_the_unit_is_hardened_and_restarts_on_failure() -> None:
    entries = unit()
    script = Path(sys.executable).parent / "cargobay"
    assert entries["ExecStart"] == [f"{script} serve --host 127.0.0.1 --port 5000"]
    assert entries["User"] == ["cargobay"] and entries["Group"] == ["cargobay"]
    assert entries["ProtectSystem"] == ["strict"]
    assert entries["ReadWritePaths"] == ["/var/lib/cargobay"]
    assert entries["Environment"] == ["CARGOBAY_DATA_DIR=/var/lib/cargobay"]
    assert entries["NoNewPrivileges"] == ["yes"] and entries["PrivateTmp"] == ["yes"]
    assert entries["Restart"] == ["on-failure"]
    assert int(entries["TimeoutStopSec"][0]) == STOP_TIMEOUT_SECONDS > GRACEFUL_STOP_SECONDS
    assert entries["KillSignal"] == ["SIGTERM"]


def test_options_reach_the_unit() -> None:
    entries = unit(
        "--user", "registry", "--data-dir", "/var/lib/registry/data", "--host", "0.0.0.0",
        "--port", "8080", "--base-url", "https://registry.example.com",
    )  # fmt: skip
    assert entries["User"] == ["registry"]
    assert entries["StateDirectory"] == ["registry/data"]
    assert entries["ReadWritePaths"] == ["/var/lib/registry/data"]
    assert entries["ExecStart"][0].endswith(
        "serve --host 0.0.0.0 --port 8080 --base-url https://registry.example.com"
    )


def test_a_data_dir_outside_var_lib_is_refused() -> None:
    assert_one_clear_error(cargobay("systemd-unit", "--data-dir", "/srv/x"), "/var/lib")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian: systemd; scripts/test installs it)",
)
def test_systemd_analyze_verify_accepts_it_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cargobay.service"
    path.write_text(unit()["_text"][0])
    done = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    # the check does catch mistakes: a value systemd cannot parse is a warning
    broken = tmp_path / "broken.service"
    broken.write_text(path.read_text().replace("ProtectSystem=strict", "ProtectSystem=sometimes"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert "ProtectSystem" in done.stderr or "protect system" in done.stderr
