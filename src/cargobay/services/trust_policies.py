"""The rules of trust policies: what a condition may say, and whether (or why not) an ID token
satisfies a policy, in words a CI user understands.

A condition is a claim name and a pattern: exact, or a glob (``*``, ``?``, ``[...]``, matched
with :func:`fnmatch.fnmatchcase`, where ``*`` also matches ``/``). Claim values that are
booleans or numbers match as JSON spells them (``true``, ``42``); lists and objects never
match. Every condition of a policy must hold, and the token's ``aud`` must contain the
policy's audience.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from cargobay.ports.trust import TrustPolicy
from cargobay.services.accounts import InvalidInput

_CLAIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
#: Claims checked by the verifier or the policy itself, never by a condition.
RESERVED_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})
MAX_CONDITIONS = 20
MAX_PATTERN = 255
_SHOWN = 120


class InvalidPolicy(InvalidInput):
    """invalid trust policy"""


def parse_conditions(items: Iterable[str]) -> dict[str, str]:
    """``NAME=PATTERN`` strings (the CLI and the page) as a condition mapping."""
    conditions: dict[str, str] = {}
    for item in items:
        name, sep, pattern = item.strip().partition("=")
        if not sep:
            raise InvalidPolicy(f"invalid condition {item.strip()[:_SHOWN]!r}: use NAME=PATTERN")
        name = name.strip()
        if name in conditions:
            raise InvalidPolicy(f"the claim {name!r} has two conditions; give it one")
        conditions[name] = pattern.strip()
    return check_conditions(conditions)


def check_conditions(conditions: Mapping[str, str]) -> dict[str, str]:
    """The conditions, if a policy may have them; else InvalidPolicy saying why."""
    if not conditions:
        raise InvalidPolicy(
            "a trust policy needs at least one claim condition (e.g. repository=OWNER/NAME)"
        )
    if len(conditions) > MAX_CONDITIONS:
        raise InvalidPolicy(f"a trust policy has at most {MAX_CONDITIONS} conditions")
    for name, pattern in conditions.items():
        if not _CLAIM_NAME.fullmatch(name):
            raise InvalidPolicy(f"invalid claim name {name[:_SHOWN]!r}")
        if name in RESERVED_CLAIMS:
            raise InvalidPolicy(
                f"{name!r} can't be a condition: the issuer, audience, lifetime and jti are"
                " always checked"
            )
        if not pattern or len(pattern) > MAX_PATTERN or not pattern.isprintable():
            raise InvalidPolicy(
                f"the pattern of {name!r} must be 1 to {MAX_PATTERN} printable characters"
            )
    if all(set(p) <= {"*", "?"} for p in conditions.values()):
        raise InvalidPolicy(
            "at least one condition must pin a value: wildcards alone would trust every"
            " workflow the issuer signs for"
        )
    return dict(conditions)


def claim_text(value: Any) -> str | None:
    """A claim value as conditions see it (None: lists and objects, which never match)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def matches(text: str, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatchcase(text, pattern)
    return text == pattern


def audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def mismatch(
    policy: TrustPolicy, issuer: str, claims: Mapping[str, Any], default_audience: str
) -> str | None:
    """Why the token (``issuer``, ``claims``) does not satisfy ``policy``; None if it does."""
    if policy.issuer != issuer:
        return f"the issuer is {issuer}, the policy wants {policy.issuer}"
    audience = policy.audience or default_audience
    got = audiences(claims)
    if audience not in got:
        shown = ", ".join(got)[:_SHOWN] or "missing"
        return f"aud is {shown}, the policy wants {audience}"
    for name, pattern in policy.claims:
        if name not in claims:
            return f"the ID token has no {name} claim, the policy wants {name}={pattern}"
        text = claim_text(claims[name])
        if text is None or not matches(text, pattern):
            shown = "a list or an object" if text is None else text[:_SHOWN]
            return f"{name} is {shown}, the policy wants {pattern}"
    return None
