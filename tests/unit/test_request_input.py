"""Strict JSON for pushed documents and unsigned numbers from requests."""

from __future__ import annotations

import json
import time

import pytest

from cargobay.oci import jsondoc
from cargobay.oci.numbers import MAX_DIGITS, parse_id, parse_unsigned


@pytest.mark.parametrize(
    "text",
    ["[" * 65 + "]" * 65, '{"a":' * 65 + "1" + "}" * 65, '{"a":1,"a":1}', '[{"b":{"c":1,"c":2}}]'],
)
def test_too_deep_or_duplicate_keys_are_rejected(text: str) -> None:
    with pytest.raises(jsondoc.JSONRejected):
        jsondoc.loads(text.encode())


def test_what_is_accepted_parses_like_the_standard_parser() -> None:
    for text in ("[" * 64 + "]" * 64, '{"a": "[[[[{{{{\\"]]"}', '"x"', "[1, 2.5, null, true]"):
        assert jsondoc.loads(text.encode()) == json.loads(text)
    assert jsondoc.loads('{"a": 1}'.encode("utf-16")) == {"a": 1}


def test_depth_is_counted_in_linear_time_without_recursion() -> None:
    started = time.monotonic()
    assert jsondoc.nesting_depth("[" * 2_000_000) == 2_000_000
    assert jsondoc.nesting_depth('["' + "[" * 1_000_000 + '"]') == 1
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("text", ["²", "٣", "\uff13", " 1", "1 ", "+1", "-1", "1_0", "0x1", ""])
def test_only_ascii_digits_are_numbers(text: str) -> None:
    assert parse_unsigned(text) is None


def test_numbers_are_bounded() -> None:
    assert parse_unsigned("0") == 0
    assert parse_unsigned("9" * MAX_DIGITS) == int("9" * MAX_DIGITS)
    assert parse_unsigned("9" * (MAX_DIGITS + 1)) is None
    assert parse_unsigned("5", maximum=4) is None
    assert parse_id("0") is None and parse_id("2147483647") == 2**31 - 1
    assert parse_id("2147483648") is None
