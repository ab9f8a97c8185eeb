"""Content digests: ``algorithm:encoded`` (image-spec, descriptor.md#digests)."""

from __future__ import annotations

import hashlib
import re
from typing import NewType

from cargobay.errors import DigestInvalid, Unsupported

Digest = NewType("Digest", str)

#: Registered algorithms and the exact form of their encoded part.
ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}

_GRAMMAR = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def parse_digest(value: str) -> Digest:
    """Validate ``value`` as a digest of a supported algorithm.

    Raises DigestInvalid for a malformed digest and Unsupported for a well-formed one whose
    algorithm this registry does not implement. The result can safely become a path segment.
    """
    if not _GRAMMAR.fullmatch(value):
        raise DigestInvalid("invalid digest", {"digest": value[:200]})
    algorithm, _, encoded = value.partition(":")
    pattern = ALGORITHMS.get(algorithm)
    if pattern is None:
        raise Unsupported(f"digest algorithm {algorithm!r} is not supported", {"digest": value})
    if not pattern.fullmatch(encoded):
        raise DigestInvalid("invalid digest", {"digest": value[:200]})
    return Digest(value)


def is_digest(value: str) -> bool:
    """True if ``value`` looks like a digest (has an algorithm prefix) rather than a tag."""
    return ":" in value


def algorithm_of(digest: Digest) -> str:
    return digest.partition(":")[0]


def encoded_of(digest: Digest) -> str:
    return digest.partition(":")[2]


def new_hasher(algorithm: str) -> hashlib._Hash:
    if algorithm not in ALGORITHMS:
        raise Unsupported(f"digest algorithm {algorithm!r} is not supported")
    return hashlib.new(algorithm)


def compute_digest(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")
