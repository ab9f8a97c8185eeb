"""Range header parsing for blob GETs (RFC 9110 §14)."""

from __future__ import annotations

import pytest

from cargobay.api.oci.responses import parse_range
from cargobay.errors import RangeInvalid


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=0-0", (0, 0)),
        ("bytes=9-3", None),  # invalid: ignored, the whole blob is sent
        ("bytes=0-1,5-6", None),  # several ranges: ignored
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeInvalid) as info:
        parse_range(header, 100)
    assert info.value.size == 100
