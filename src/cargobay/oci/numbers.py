"""Unsigned integers written by clients: query parameters, path segments, form fields, headers.

``str.isdigit`` and ``int`` accept far more than a protocol number (``"²"`` is a digit to
``isdigit`` and an error to ``int``; ``int`` reads ``"٣"``, ``" 3"`` and ``"3_0"``), so every
number a request carries is read here: ASCII digits only, and at most :data:`MAX_DIGITS` of them.
"""

from __future__ import annotations

import re

#: Longest number read (any value below 10**19 fits a signed 64-bit integer).
MAX_DIGITS = 19

_DIGITS = re.compile(f"[0-9]{{1,{MAX_DIGITS}}}")


def parse_unsigned(text: str | None, maximum: int | None = None) -> int | None:
    """The value of ``text`` if it is a non-negative integer in ASCII digits (at most
    :data:`MAX_DIGITS`, and at most ``maximum`` if given), else None."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if maximum is None or value <= maximum else None


def parse_id(text: str | None) -> int | None:
    """A database id (1 to 2**31 - 1) from a path segment or form field, else None."""
    value = parse_unsigned(text, 2**31 - 1)
    return value if value else None
