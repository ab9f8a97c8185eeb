"""Content digests as the OCI image-spec writes them (``algorithm:hex``), computed here rather
than by the product, so a test checks the registry against an independent computation."""

from __future__ import annotations

import hashlib
import os


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """``sha256:<hex>`` (or ``sha512:<hex>``) of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def random_digest(algorithm: str = "sha256") -> str:
    """The digest of random bytes: content no registry has ever seen."""
    return digest_of(os.urandom(32), algorithm)
