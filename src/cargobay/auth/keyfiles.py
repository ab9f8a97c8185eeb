"""Key files the server creates on first start (private, 0600) and every process then reads."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The text of the file at ``path``, created (0600) with ``make()`` if missing. Safe to
    race: the text is written whole to a temporary file and linked into place, so a reader never
    sees a partial file, and of two creators the first link wins and the other reads it."""
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    text = make()
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # fails if another process got there first
        except FileExistsError:
            return path.read_text()
    finally:
        temporary.unlink(missing_ok=True)
    return text
