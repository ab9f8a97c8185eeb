"""``docs/configuration.md`` is generated from the settings model and kept current."""

from __future__ import annotations

from pathlib import Path

from cargobay.settings import Settings
from cargobay.settings_reference import REGENERATE, field_comments, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render(), f"docs/configuration.md is out of date: run {REGENERATE}"


def test_every_setting_is_documented_with_its_variable_and_meaning() -> None:
    text = render()
    comments = field_comments()
    for name in Settings.model_fields:
        assert f"| `{name}` | `CARGOBAY_{name.upper()}` |" in text
        assert comments.get(name) or Settings.model_fields[name].description, name


def test_comments_are_read_from_the_source() -> None:
    source = """
class Settings:
    #: Listen here.
    host: str = "x"
    #: Shared by a group,
    #: over two lines.
    first: int = Field(
        default=1, ge=0
    )
    second: int = 2

    third: int = 3
"""
    assert field_comments(source) == {
        "host": "Listen here.",
        "first": "Shared by a group, over two lines.",
        "second": "Shared by a group, over two lines.",
        "third": "",
    }
