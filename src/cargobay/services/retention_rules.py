"""What a retention policy may say: numbers in range, tag patterns that are globs or RE2
regular expressions (``re:``) with a bounded compile, and the matcher they make."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import re2

from cargobay.ports.retention import RetentionPolicy
from cargobay.services.accounts import InvalidInput

MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 128
MAX_DAYS = 36500
MAX_TAGS = 100_000
#: Memory RE2 may use to compile one pattern: bounds what a pattern can cost.
_RE2_MAX_MEM = 1 << 20
_GLOB = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-*?[]!")


def _compile(pattern: str) -> Callable[[str], bool]:
    """A matcher for one tag pattern: a glob, or an RE2 regular expression after ``re:``
    (linear-time matching: no pattern can make a match slow). Raises InvalidInput."""
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidInput(f"a tag pattern has 1 to {MAX_PATTERN_LENGTH} characters: {pattern!r}")
    if pattern.startswith("re:"):
        options = re2.Options()
        options.max_mem = _RE2_MAX_MEM
        options.log_errors = False
        try:
            compiled = re2.compile(pattern[3:], options)
        except re2.error as exc:
            raise InvalidInput(
                f"{pattern!r} is not a regular expression RE2 accepts: {exc}"
            ) from None
        return lambda tag: compiled.fullmatch(tag) is not None
    if not set(pattern) <= _GLOB:
        raise InvalidInput(
            f"{pattern!r} is not a tag pattern: A-Z a-z 0-9 _ . - and the glob characters"
            " * ? [ ] !, or a regular expression after re:"
        )
    return lambda tag: fnmatch.fnmatchcase(tag, pattern)


def _days(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}")


def validate(policy: RetentionPolicy) -> tuple[RetentionPolicy, Callable[[str], bool]]:
    """The policy cleaned (patterns stripped, deduplicated), and its tag matcher."""
    _days("untagged_days", policy.untagged_days, 1, MAX_DAYS)
    _days("keep_tags", policy.keep_tags, 1, MAX_TAGS)
    _days("pulled_days", policy.pulled_days, 1, MAX_DAYS)
    patterns = tuple(dict.fromkeys(p.strip() for p in policy.tag_patterns))
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(f"at most {MAX_PATTERNS} tag patterns")
    matchers = [_compile(p) for p in patterns]
    cleaned = RetentionPolicy(
        untagged_days=policy.untagged_days,
        keep_tags=policy.keep_tags,
        tag_patterns=patterns,
        pulled_days=policy.pulled_days,
    )
    return cleaned, lambda tag: any(m(tag) for m in matchers)
