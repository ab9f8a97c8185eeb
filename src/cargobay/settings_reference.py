"""``docs/configuration.md``, generated from :class:`cargobay.settings.Settings`: each setting's
variable, TOML key, type, default, allowed values and meaning (the ``#:`` comment above the field
in ``settings.py``, or its ``Field(description=...)``)."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic.fields import FieldInfo

from cargobay.configuration import CONFIG_VARIABLE, env_name
from cargobay.settings import Settings

REGENERATE = ".venv/bin/cargobay config reference > docs/configuration.md"

_HEADER = f"""# Configuration reference

<!-- Generated from src/cargobay/settings.py: do not edit by hand. Regenerate with
     {REGENERATE}
     (tests/unit/test_configuration_reference.py fails while this file is out of date). -->

Every setting can be given, strongest first, as a command-line flag (`serve` takes `--host`,
`--port`, `--data-dir`, `--workers` and `--base-url`; every command takes `--data-dir`), as an
environment variable `CARGOBAY_<NAME>`, or as a key in the TOML file named by
`{CONFIG_VARIABLE}`; otherwise the default applies. A mistake stops the command with one line
naming the setting, where the value came from and what is allowed (exit code 2): an invalid
value, an unknown `CARGOBAY_*` variable or TOML key, a `{CONFIG_VARIABLE}` naming no file.
`cargobay config show` prints the effective settings and the source of each (secrets masked);
`cargobay config check` validates the file and the environment without starting anything.

Every setting is read when the server starts: changing one takes a restart.

```toml
# /etc/cargobay/cargobay.toml (CARGOBAY_CONFIG=/etc/cargobay/cargobay.toml)
data_dir = "/var/lib/cargobay"
base_url = "https://registry.example.com"
max_blob_size = 5_000_000_000
```

| setting (TOML key) | variable | type | default | allowed | restart | meaning |
|---|---|---|---|---|---|---|
"""


def field_comments(source: str | None = None) -> dict[str, str]:
    """The ``#:`` comment above each field of ``Settings``; a field right below a commented one
    (no blank line between) shares its comment."""
    source = source if source is not None else inspect.getsource(Settings)
    comments: dict[str, str] = {}
    pending: list[str] = []
    group: str | None = None
    for line in source.splitlines():
        stripped = line.strip()
        field = re.match(r"    ([a-z_][a-z0-9_]*)\s*:[^=]+=", line)
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
        elif field:
            group = " ".join(pending) if pending else group
            comments[field.group(1)] = group or ""
            pending = []
        elif not stripped or not (line.startswith(" " * 8) or stripped.startswith(("#", ")"))):
            pending, group = [], None
    return comments


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return _type_name(type(get_args(annotation)[0]))
    if get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(annotation))
    if annotation is type(None):
        return "none"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _allowed(field: FieldInfo) -> str:
    parts: list[str] = []
    if get_origin(field.annotation) is Literal:
        parts.append("one of " + ", ".join(f"`{choice}`" for choice in get_args(field.annotation)))
    for rule in field.metadata:
        if isinstance(rule, Ge):
            parts.append(f"≥ {rule.ge}")
        elif isinstance(rule, Gt):
            parts.append(f"> {rule.gt}")
        elif isinstance(rule, Le):
            parts.append(f"≤ {rule.le}")
        elif isinstance(rule, Lt):
            parts.append(f"< {rule.lt}")
        elif isinstance(rule, MinLen):
            parts.append(f"length ≥ {rule.min_length}")
        elif isinstance(rule, MaxLen):
            parts.append(f"length ≤ {rule.max_length}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value >= 10_000:
        return f"`{value:_}`"
    if isinstance(value, Path | str):
        return f'`"{value}"`' if str(value) else '`""`'
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole of ``docs/configuration.md``."""
    comments = field_comments()
    rows = []
    for name, field in Settings.model_fields.items():
        meaning = field.description or comments.get(name, "")
        rows.append(
            "| "
            + " | ".join(
                _cell(cell)
                for cell in (
                    f"`{name}`",
                    f"`{env_name(name)}`",
                    _type_name(field.annotation),
                    _default(field),
                    _allowed(field),
                    "yes",
                    meaning,
                )
            )
            + " |"
        )
    return _HEADER + "\n".join(rows) + "\n"
