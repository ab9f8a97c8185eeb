"""The operator CLI (``cargobay ... --data-dir D``) run in batches: many commands in one Python
process, one start-up instead of one per command, with the settings of a server's environment.

:func:`operator_cli` runs commands that must all succeed and returns their output;
:func:`operator_batch` runs commands that may fail and returns each one's exit code, stdout and
stderr. Commands share the batch's stdin (``--password-stdin`` commands read one line each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# argv: data dir, JSON list of argument lists, "stop" or "all". Prints one JSON line: for each
# command run, its exit code, stdout and stderr. With "stop", the first failure ends the batch.
_BATCH = """
import contextlib, io, json, sys, traceback
import click
from cargobay.cli import cli
results = []
for args in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli([*args, "--data-dir", sys.argv[1]], standalone_mode=False) or 0
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
            if not isinstance(exc.code, int) and exc.code is not None:
                print(exc.code, file=sys.stderr)
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    if code and sys.argv[3] == "stop":
        break
print(json.dumps(results))
"""


class OperatorFailed(AssertionError):
    """An operator command that had to succeed exited non-zero (the message has its output)."""


def operator_batch(
    data_dir: Path,
    env: Mapping[str, str],
    commands: Sequence[Sequence[str]],
    *,
    stdin: str | None = None,
    stop_at_failure: bool = False,
    timeout: float = 300,
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``cargobay ARGS --data-dir data_dir`` for each command, in order, in one process with
    the settings ``env`` (``CARGOBAY_*`` variables); one result per command run."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _BATCH,
            str(data_dir),
            json.dumps([list(c) for c in commands]),
            "stop" if stop_at_failure else "all",
        ],
        env={**os.environ, **env},
        input=stdin or "",  # a command that reads more than it is given meets the end
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise OperatorFailed(f"operator batch {commands} failed:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        subprocess.CompletedProcess(list(c), r["code"], r["stdout"], r["stderr"])
        for c, r in zip(commands, raw, strict=False)
    ]


def operator_cli(
    data_dir: Path,
    env: Mapping[str, str],
    commands: Sequence[Sequence[str]],
    *,
    stdin: str | None = None,
) -> list[str]:
    """Run operator commands that must all succeed (the first failure raises
    :class:`OperatorFailed`); returns each command's stdout, stripped."""
    results = operator_batch(data_dir, env, commands, stdin=stdin, stop_at_failure=True)
    for result in results:
        if result.returncode != 0:
            raise OperatorFailed(
                f"cargobay {' '.join(result.args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
    return [result.stdout.strip() for result in results]
