"""Strict JSON for documents clients push (manifests, indexes, image configs).

Two guards the standard parser lacks:

- **Nesting depth** is bounded before parsing, by a linear scan (no recursion): a document
  nested deeper than :data:`MAX_DEPTH` is refused instead of exhausting the parser's stack.
- **Duplicate keys** are refused: parsers disagree on which of two equal keys wins, so a
  document with one could mean one thing to the registry and another to a client.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import accumulate
from typing import Any

#: Deepest nesting of arrays and objects accepted. Real manifests and configs nest < 10 deep.
MAX_DEPTH = 64

#: A JSON string literal (escapes included), to blank out before counting brackets.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONRejected(ValueError):
    """The text is not JSON this registry accepts (malformed, too deep, duplicate keys)."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets in strings ignored (an
    upper bound when it is within :data:`MAX_DEPTH`). Linear time, no recursion."""
    opening = text.count("[") + text.count("{")
    if opening <= MAX_DEPTH:
        return opening
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        duplicate = next(key for key, n in counts.items() if n > 1)
        raise JSONRejected(f"duplicate key {duplicate[:100]!r}")
    return document


def loads(data: bytes | str) -> Any:
    """Parse ``data`` (UTF-8, -16 or -32 bytes, or text). Raises JSONRejected."""
    try:
        text = data.decode(json.detect_encoding(data)) if isinstance(data, bytes) else data
    except (UnicodeDecodeError, LookupError) as exc:
        raise JSONRejected(f"not valid JSON text: {exc}") from None
    if nesting_depth(text) > MAX_DEPTH:
        raise JSONRejected(f"nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except JSONRejected:
        raise
    except (ValueError, RecursionError) as exc:
        raise JSONRejected(f"not valid JSON: {exc}") from None
