"""Sizes in quota commands and refusals: what operators type, what docker users read."""

from __future__ import annotations

import pytest

from cargobay.errors import QuotaExceeded, format_bytes
from cargobay.services.quotas import QuotaView, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10GB", 10_000_000_000),
        ("10 gb", 10_000_000_000),
        ("10G", 10_000_000_000),
        ("500MiB", 500 * 1024**2),
        ("1.5TB", 1_500_000_000_000),
        ("1048576", 1_048_576),
        ("512B", 512),
        ("2kB", 2000),
        ("1KiB", 1024),
    ],
)
def test_sizes_operators_type(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "10XB", "-5GB", "10 G B", "1e9", "GB", "10bytes"])
def test_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 kB"),
        (800_000_000, "800 MB"),
        (9_500_000_000, "9.5 GB"),
        (10_000_000_000, "10 GB"),
        (123_456_789, "123 MB"),
        (5 * 10**15, "5000 TB"),
        (999_900_000, "1000 MB"),
        (1_234_567, "1.23 MB"),
        (40_960, "41 kB"),
    ],
)
def test_sizes_as_docker_prints_them(size: int, shown: str) -> None:
    assert format_bytes(size) == shown


def test_the_refusal_says_what_is_used_what_the_push_adds_and_the_limit() -> None:
    refused = QuotaExceeded("acme", used=9_500_000_000, limit=10_000_000_000, adds=800_000_000)
    assert refused.message == (
        "storage quota exceeded: namespace acme uses 9.5 GB of its 10 GB quota;"
        " this push adds 800 MB"
    )
    assert refused.detail == {
        "namespace": "acme",
        "used": 9_500_000_000,
        "quota": 10_000_000_000,
        "adds": 800_000_000,
    }


def test_the_warning_starts_at_the_threshold() -> None:
    assert not QuotaView("acme", 799, 1000, 80).warning
    assert QuotaView("acme", 800, 1000, 80).warning
    assert not QuotaView("acme", 999, 1000, None).warning
    assert not QuotaView("acme", 999, None, 80).warning
    assert QuotaView("acme", 250, 1000, None).describe() == "acme: 250 B used of 1 kB (25.0%)"
    assert QuotaView("acme", 250, None, None).describe() == "acme: 250 B used, no quota"
