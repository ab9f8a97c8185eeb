"""Every ``cargobay`` command the README and ``docs/`` show exists: a reader who copies one
never meets "No such command"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from cargobay.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Code spans and fenced blocks: where commands are shown.
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
#: ``cargobay`` followed by words (not ``cargobay[s3]``, ``.venv/bin/cargobay-x`` or ``<cargobay``).
CALL = re.compile(r"(?<![\w.\[<-])cargobay((?:[ \t]+[a-z][a-z0-9-]*)+)")


def shown_commands(text: str) -> list[list[str]]:
    calls = []
    for span in CODE.findall(text):
        lines = [re.sub(r"(^|\s)#.*", "", line) for line in span.splitlines()]
        calls += [m.group(1).split() for m in CALL.finditer("\n".join(lines))]
    return calls


def unknown_part(words: list[str]) -> str | None:
    """The first word that is not a (sub)command where one is expected, else None."""
    node: object = typer.main.get_command(cli)
    for word in words:
        if not isinstance(node, TyperGroup):
            return None  # the rest are the command's arguments
        with typer.Context(node) as ctx:
            sub = node.get_command(ctx, word)
        if sub is None:
            return word
        node = sub
    return None


def test_the_check_finds_commands_and_refuses_made_up_ones() -> None:
    calls = shown_commands("run `cargobay gc --dry-run`, then `cargobay user frobnicate x`")
    assert calls == [["gc"], ["user", "frobnicate", "x"]]
    assert [unknown_part(c) for c in calls] == [None, "frobnicate"]
    assert unknown_part(["setup"]) == "setup"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_shown_exists(doc: Path) -> None:
    wrong = [
        " ".join(["cargobay", *words])
        for words in shown_commands(doc.read_text())
        if unknown_part(words) is not None
    ]
    assert not wrong, f"{doc.name} shows commands that do not exist: {wrong}"
