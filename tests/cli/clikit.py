"""Running ``cargobay`` the way an operator does (a process of its own, a clean environment) and
asserting what a mistake looks like: one line on stderr, no traceback, a non-zero exit."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Exit code of a configuration mistake.
CONFIG = 2


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any cargobay setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("CARGOBAY_") or k.upper().startswith("CARGOBAY_TEST_")
    }
    env.update(extra)
    return env


def cargobay(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    wrapper: Sequence[str] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``cargobay ARGS`` (``python -m cargobay``), optionally under ``wrapper`` (e.g. setpriv)."""
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "cargobay", *map(str, args)],
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def in_read_only_mount(directory: Path) -> list[str]:
    """A wrapper running the command in a private mount namespace where ``directory`` is an
    empty read-only tmpfs (nothing changes outside that process)."""
    return [
        "unshare",
        "-m",
        "sh",
        "-c",
        f'mount -t tmpfs -o ro,size=1m tmpfs {shlex.quote(str(directory))} && exec "$@"',
        "sh",
    ]


def assert_one_clear_error(
    done: subprocess.CompletedProcess[str], *words: str, code: int = CONFIG
) -> str:
    """One ``cargobay: ...`` line (two at most) on stderr, no traceback, exit ``code``; every
    word in ``words`` is in it. Returns the message."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert 1 <= len(lines) <= 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert lines[0].startswith("cargobay: "), done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    return done.stderr.strip()


def commands_taking(option: str, fill: Mapping[str, str]) -> list[list[str]]:
    """Every leaf ``cargobay`` command that has ``option``, as the arguments that run it (e.g.
    ``["user", "create", "alice"]``): each required argument or option gets ``fill[its name]``
    (``"x"`` when absent). Read from the command tree, so a new command is covered unlisted."""
    import typer
    from typer.core import TyperGroup

    from cargobay.cli import cli

    found = []

    def walk(node: Any, words: list[str]) -> None:
        if isinstance(node, TyperGroup):
            with typer.Context(node) as ctx:
                for name in node.list_commands(ctx):
                    walk(node.get_command(ctx, name), [*words, name])
            return
        if not any(option in param.opts for param in node.params):
            return
        args = list(words)
        for param in node.params:
            if param.required:
                flag = [param.opts[0]] if param.param_type_name == "option" else []
                args += [*flag, fill.get(param.name, "x")]
        found.append(args)

    walk(typer.main.get_command(cli), [])
    return found
