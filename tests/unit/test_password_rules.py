"""NIST SP 800-63B rules for new passwords: 8 to 256 characters, not a common password, no
composition rules."""

from __future__ import annotations

import pytest

from cargobay.auth.passwords import WeakPassword, check_password


@pytest.mark.parametrize(
    "password",
    ["abcdefgh", "p" * 256, "correct horse battery staple", "ünïcödé-ok", "🐳🐳🐳🐳🐳🐳🐳🐳"],
)
def test_accepted(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("", "at least 8"),
        ("1234567", "at least 8"),
        ("p" * 257, "at most 256"),
        ("password", "common"),
        ("PASSWORD", "common"),
        ("12345678", "common"),
        ("qwertyuiop", "common"),
        ("iloveyou", "common"),
    ],
)
def test_refused_with_the_reason(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why):
        check_password(password)
