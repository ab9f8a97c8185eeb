"""A bad ``--data-dir`` on every command that takes one (found in the command tree, so a new
command is covered without being listed): one line on stderr naming the directory, a non-zero
exit, no traceback, and nothing created.

The commands run in this process (typer's runner: the same parsing, output streams and exit
codes), since there are fifty of them; ``test_cli_config_errors.py`` runs a few as processes of
their own, with missing permissions and read-only mounts too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import commands_taking
from typer.testing import CliRunner

from cargobay.cli import cli

#: Values for required arguments, so each command gets as far as its data directory.
FILL = {
    "name": "acme/app",
    "owner": "acme",
    "org": "acme",
    "user": "alice",
    "team": "readers",
    "grantee": "alice",
    "role": "read",
    "repository": "acme/src",
    "issuer": "https://ci.example.com",
    "claim": "sub=x",
    "policy_id": "1",
    "scopes": "read:packages",
    "token": "cbp_x",
    "visibility": "public",
    "patterns": "v*",
    "url": "https://hooks.example.com/x",
    "hook_id": "1",
    "size": "1GB",
}
#: Options a command needs one of (no single one is required).
EXTRA = {"webhook": ["--site"], "user set-password": ["--password-stdin"]}
#: ``config show`` prints the settings, the data directory among them; it opens nothing.
SHOWS_ONLY = [["config", "show"]]
COMMANDS = [c for c in commands_taking("--data-dir", FILL) if c[:2] not in SHOWS_ONLY]


@pytest.fixture(autouse=True)
def own_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``CARGOBAY_*`` setting from outside; what a command exports is undone afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.upper().startswith("CARGOBAY_") and not name.upper().startswith("CARGOBAY_TEST_"):
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    yield
    os.environ.clear()
    os.environ.update(saved)


def run(command: list[str], data_dir: Path) -> str:
    """``cargobay COMMAND --data-dir DATA_DIR``: returns its one line on stderr."""
    args = ["target" if a == "x" and command[0] in ("backup", "restore") else a for a in command]
    args += EXTRA.get(command[0], []) + EXTRA.get(" ".join(command[:2]), [])
    done = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir)], input="a long pass\n")
    assert isinstance(done.exception, SystemExit | None), done.exception  # no traceback
    assert done.exit_code != 0, (command, done.stdout)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cargobay: "), (command, done.stderr)
    assert str(data_dir) in lines[0], (command, lines[0])
    return lines[0]


def test_the_tree_is_read() -> None:
    """The walk finds nested groups' commands, and not the ones without the option."""
    words = [c[:3] for c in COMMANDS]
    assert ["serve"] in words and ["gc"] in words and ["repo", "trust", "add"] in words
    assert ["config", "reference"] not in words and not any(c[0] == "ci-login" for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_data_dir_is_one_clear_error(tmp_path: Path, command: list[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    run(command, a_file)
    assert a_file.read_text() == "x"
    run(command, tmp_path / "missing" / "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "nothing created"
