"""Immutable tags: per-package glob patterns; a tag matching one can't be moved to another
version or deleted once it names one (pushing the same version under it again is fine).

The checks run inside the transactions that move or delete tags (:mod:`.manifests`), so two
pushes racing for a new immutable tag can't both win: the tag is inserted, never overwritten,
and whoever finds it naming another version gets TagImmutable.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from cargobay.errors import TagImmutable
from cargobay.metadata.database import Database, now, offloaded
from cargobay.metadata.schema import immutable_tag_rules, manifests, tags


def _patterns(c: sa.Connection, package_id: int) -> list[str]:
    return list(
        c.execute(
            sa.select(immutable_tag_rules.c.pattern)
            .where(immutable_tag_rules.c.repository_id == package_id)
            .order_by(immutable_tag_rules.c.pattern)
        ).scalars()
    )


def patterns(c: sa.Connection, package_id: int) -> list[str]:
    """The package's immutable tag patterns, in the caller's transaction."""
    return _patterns(c, package_id)


def protecting(c: sa.Connection, package_id: int, tag: str) -> str | None:
    """The first pattern of the package that makes ``tag`` immutable, or None."""
    return next((p for p in _patterns(c, package_id) if fnmatch.fnmatchcase(tag, p)), None)


def _refuse(tag: str, pattern: str, digest: str | None, what: str) -> TagImmutable:
    names = f" (it names {digest})" if digest else ""
    return TagImmutable(
        f"tag {tag!r} is immutable{names}: it matches the package's immutable tag rule"
        f" {pattern!r}, so it can't be {what}; push under a new tag instead",
        {"tag": tag, "rule": pattern},
    )


def _digest(c: sa.Connection, manifest_id: int) -> str | None:
    return c.execute(sa.select(manifests.c.digest).where(manifests.c.id == manifest_id)).scalar()


def set_tag(
    c: sa.Connection, db: Database, package_id: int, tag: str, manifest_id: int, at: datetime
) -> bool:
    """Point an immutable ``tag`` at ``manifest_id`` if it names nothing yet (True), or leave
    it if it already names it (True); raises TagImmutable if it names another version. False:
    the tag is not immutable, the caller sets it as usual."""
    pattern = protecting(c, package_id, tag)
    if pattern is None:
        return False
    c.execute(
        db._insert(tags)
        .values(repository_id=package_id, name=tag, manifest_id=manifest_id, updated_at=at)
        .on_conflict_do_nothing(index_elements=["repository_id", "name"])
    )
    current = c.execute(
        sa.select(tags.c.manifest_id).where(tags.c.repository_id == package_id, tags.c.name == tag)
    ).scalar()
    if current != manifest_id:
        raise _refuse(tag, pattern, _digest(c, current) if current else None, "moved")
    return True


def check_delete_tag(c: sa.Connection, package_id: int, tag: str) -> None:
    pattern = protecting(c, package_id, tag)
    if pattern is not None:
        current = c.execute(
            sa.select(tags.c.manifest_id).where(
                tags.c.repository_id == package_id, tags.c.name == tag
            )
        ).scalar()
        if current is not None:
            raise _refuse(tag, pattern, _digest(c, current), "deleted")


def check_delete_versions(c: sa.Connection, package_id: int, ids: Sequence[int]) -> None:
    """Raise TagImmutable if one of the versions ``ids`` has an immutable tag."""
    patterns = _patterns(c, package_id)
    if not patterns or not ids:
        return
    rows = c.execute(
        sa.select(tags.c.name, tags.c.manifest_id).where(
            tags.c.repository_id == package_id, tags.c.manifest_id.in_(list(ids))
        )
    ).all()
    for row in sorted(rows):
        for pattern in patterns:
            if fnmatch.fnmatchcase(row.name, pattern):
                raise _refuse(row.name, pattern, _digest(c, row.manifest_id), "deleted")


@offloaded
class SqlImmutableTagStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def patterns(self, package_id: int) -> list[str]:
        with self.db.read() as c:
            return _patterns(c, package_id)

    async def replace(self, package_id: int, patterns: Sequence[str]) -> list[str]:
        """Make ``patterns`` the package's rules (none: no tag is immutable)."""
        with self.db.write() as c:
            c.execute(
                sa.delete(immutable_tag_rules).where(
                    immutable_tag_rules.c.repository_id == package_id
                )
            )
            at = now()
            for pattern in sorted(set(patterns)):
                c.execute(
                    sa.insert(immutable_tag_rules).values(
                        repository_id=package_id, pattern=pattern, created_at=at
                    )
                )
            return _patterns(c, package_id)
