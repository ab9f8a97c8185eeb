"""Repository names, tags and references (distribution-spec, "Pulling manifests")."""

from __future__ import annotations

import re
from typing import NewType

from cargobay.errors import NameInvalid, TagInvalid

RepositoryName = NewType("RepositoryName", str)
Tag = NewType("Tag", str)

#: distribution-spec: <name> MUST match this.
NAME_PATTERN = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
#: Longest accepted name: clients limit ``host/name`` to 255 characters.
MAX_NAME_LENGTH = 255
#: distribution-spec: a tag MUST match this (at most 128 characters).
TAG_PATTERN = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")


def parse_name(value: str) -> RepositoryName:
    """Validate a repository name. Raises NameInvalid.

    A valid name can't contain ``..``, ``//`` or a leading ``/``: it is safe in paths.
    """
    if len(value) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(value):
        raise NameInvalid("invalid repository name", {"name": value[:300]})
    return RepositoryName(value)


def parse_tag(value: str) -> Tag:
    """Validate a tag. Raises TagInvalid."""
    if not TAG_PATTERN.fullmatch(value):
        raise TagInvalid("invalid tag", {"tag": value[:300]})
    return Tag(value)
