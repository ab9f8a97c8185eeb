"""``cargobay quota``: set, show, clear and recount from the operator's command line, and what
a mistake looks like (one line on stderr, a non-zero exit, nothing changed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import CONFIG, assert_one_clear_error, cargobay

FAILED = 1


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("quota") / "data"
    assert cargobay("migrate", "--data-dir", data).returncode == 0
    assert cargobay("user", "create", "quser", "--data-dir", data).returncode == 0
    return data


def test_set_show_clear_and_recount(registry: Path) -> None:
    done = cargobay("quota", "set", "quser", "10GB", "--warn", "80", "--data-dir", registry)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "quser: 0 B used of 10 GB (0.0%), warns at 80%\n"
    shown = cargobay("quota", "show", "QUser", "--json", "--data-dir", registry)
    assert json.loads(shown.stdout) == {
        "namespace": "quser",
        "used": 0,
        "quota": 10_000_000_000,
        "warn_percent": 80,
        "percent_used": 0.0,
    }
    cleared = cargobay("quota", "clear", "quser", "--data-dir", registry)
    assert cleared.stdout == "quser: 0 B used, no quota\n"
    recount = cargobay("quota", "recount", "--data-dir", registry)
    assert recount.returncode == 0, recount.stderr
    assert recount.stdout.endswith("namespaces checked, 0 corrected\n"), recount.stdout


def test_mistakes_are_one_clear_line_and_change_nothing(registry: Path) -> None:
    assert_one_clear_error(
        cargobay("quota", "set", "quser", "lots", "--data-dir", registry), "not a size", code=CONFIG
    )
    assert_one_clear_error(
        cargobay("quota", "set", "ghost", "1GB", "--data-dir", registry),
        "no user or organization 'ghost'",
        code=FAILED,
    )
    done = cargobay("quota", "set", "quser", "1GB", "--warn", "150", "--data-dir", registry)
    assert done.returncode == CONFIG and "less than or equal to 100" in done.stderr, done.stderr
    shown = json.loads(cargobay("quota", "show", "quser", "--json", "--data-dir", registry).stdout)
    assert shown["quota"] is None
