"""``docs/architecture.md`` matches the code: every module it names exists, every top-level
package and module of ``src/cargobay`` is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_module_named_exists() -> None:
    named = set()
    for path in re.findall(r"`([\w/]+(?:\.py|/))`", DOC):
        named.add(path if path.startswith(("src/", "tests/")) else f"src/cargobay/{path}")
    assert named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


def test_every_top_level_package_is_described() -> None:
    src = ROOT / "src" / "cargobay"
    top = {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top |= {p.name for p in src.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    missing = sorted(name for name in top if f"`src/cargobay/{name}" not in DOC)
    assert not missing, f"docs/architecture.md does not describe {missing}"
