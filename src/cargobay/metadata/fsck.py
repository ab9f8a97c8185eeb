"""SQL side of ``cargobay fsck``: what the metadata says is stored, and the repairs that make it
agree with the store again, each under the same blob-row locks the garbage collector and every
upload take (:mod:`cargobay.metadata.blobrows`).

A digest is *known* when a blob link, a ``blobs`` row or a manifest lists it. Repairs never
remove bytes on their own: bytes no metadata knows become garbage-collector candidates (the
collector re-checks them under their locks after its grace period), and corrupt bytes are
claimed ``deleting`` exactly like the collector claims garbage, so an upload of the same digest
waits and then stores good bytes again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from cargobay.metadata.database import Database, now, offloaded
from cargobay.metadata.schema import (
    blob_links,
    blobs,
    manifest_refs,
    manifests,
    repositories,
    tags,
    unreferenced_blobs,
)
from cargobay.ports.maintenance import DELETING, LIVE, Known, ManifestRow


@offloaded
class SqlFsckStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _known_digests(self) -> sa.Subquery:
        return sa.union(
            sa.select(blob_links.c.digest),
            sa.select(blobs.c.digest),
            sa.select(manifest_refs.c.digest).where(manifest_refs.c.kind == "blob"),
        ).subquery()

    async def known_digests(self, after: str, limit: int) -> list[str]:
        """Known digests in byte order after ``after``."""
        known = self._known_digests()
        column = self.db.bytewise(known.c.digest)
        with self.db.read() as c:
            return list(
                c.execute(
                    sa.select(known.c.digest).where(column > after).order_by(column).limit(limit)
                ).scalars()
            )

    async def details(self, digests: Sequence[str]) -> dict[str, Known]:
        wanted = list(digests)
        found = {d: Known(d) for d in wanted}
        with self.db.read() as c:
            for r in c.execute(
                sa.select(blob_links.c.digest, blob_links.c.size, repositories.c.name)
                .join(repositories, repositories.c.id == blob_links.c.repository_id)
                .where(blob_links.c.digest.in_(wanted))
            ):
                found[r.digest].links[r.name] = int(r.size)
            for r in c.execute(
                sa.select(blobs.c.digest, blobs.c.size, blobs.c.state).where(
                    blobs.c.digest.in_(wanted)
                )
            ):
                found[r.digest].row = (int(r.size), r.state)
            for v in c.execute(
                sa.select(
                    manifest_refs.c.digest,
                    repositories.c.name,
                    manifests.c.digest.label("manifest"),
                    manifests.c.deleted_at,
                )
                .join(manifests, manifests.c.id == manifest_refs.c.manifest_id)
                .join(repositories, repositories.c.id == manifests.c.repository_id)
                .where(manifest_refs.c.kind == "blob", manifest_refs.c.digest.in_(wanted))
            ):
                found[v.digest].versions.append((v.name, v.manifest, v.deleted_at is not None))
        return found

    async def is_known(self, digests: Sequence[str]) -> set[str]:
        """Which of ``digests`` the metadata knows now (links, rows, manifests, or collector
        candidates)."""
        wanted = list(digests)
        if not wanted:
            return set()
        with self.db.read() as c:
            return set(
                c.execute(
                    sa.union(
                        sa.select(blob_links.c.digest).where(blob_links.c.digest.in_(wanted)),
                        sa.select(blobs.c.digest).where(blobs.c.digest.in_(wanted)),
                        # Handed to the collector already (its grace period is running).
                        sa.select(unreferenced_blobs.c.digest).where(
                            unreferenced_blobs.c.digest.in_(wanted)
                        ),
                        sa.select(manifest_refs.c.digest).where(
                            manifest_refs.c.kind == "blob", manifest_refs.c.digest.in_(wanted)
                        ),
                    )
                ).scalars()
            )

    async def manifests_after(self, after: int, limit: int) -> list[ManifestRow]:
        """Manifest rows (any version, deleted ones too) in id order after ``after``."""
        with self.db.read() as c:
            rows = c.execute(
                sa.select(
                    manifests.c.id,
                    repositories.c.name,
                    manifests.c.digest,
                    manifests.c.size,
                    manifests.c.content,
                )
                .join(repositories, repositories.c.id == manifests.c.repository_id)
                .where(manifests.c.id > after)
                .order_by(manifests.c.id)
                .limit(limit)
            ).all()
            named: dict[int, list[str]] = {}
            ids = [r.id for r in rows]
            if ids:
                for t in c.execute(
                    sa.select(tags.c.manifest_id, tags.c.name).where(tags.c.manifest_id.in_(ids))
                ):
                    named.setdefault(t.manifest_id, []).append(t.name)
            return [
                ManifestRow(
                    r.id,
                    r.name,
                    r.digest,
                    int(r.size),
                    bytes(r.content),
                    tuple(sorted(named.get(r.id, []))),
                )
                for r in rows
            ]

    # -- repairs ---------------------------------------------------------------------------

    async def drop_dangling(self, digest: str) -> tuple[int, int]:
        """The bytes of ``digest`` are gone: drop its ``live`` row and the links no version of
        their repository lists (a version that lists it keeps its link: pushing the blob again
        heals it). An upload that pinned the row before re-creates it when it links. Returns
        (links dropped, rows dropped)."""
        with self.db.write() as c:
            stmt = sa.select(blobs.c.state).where(blobs.c.digest == digest)
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update()
            state = c.execute(stmt).scalar()
            rows = 0
            if state == LIVE:
                rows = c.execute(
                    sa.delete(blobs).where(blobs.c.digest == digest, blobs.c.state == LIVE)
                ).rowcount
            listed = (
                sa.select(manifests.c.repository_id)
                .join(manifest_refs, manifest_refs.c.manifest_id == manifests.c.id)
                .where(manifest_refs.c.kind == "blob", manifest_refs.c.digest == digest)
            )
            links = c.execute(
                sa.delete(blob_links).where(
                    blob_links.c.digest == digest, blob_links.c.repository_id.not_in(listed)
                )
            ).rowcount
            return int(links), int(rows)

    async def fix_sizes(self, digest: str, size: int) -> int:
        """The stored bytes of ``digest`` hash right but are ``size`` long: correct the links
        and the row that say otherwise. Returns how many were corrected."""
        with self.db.write() as c:
            fixed = c.execute(
                sa.update(blob_links)
                .where(blob_links.c.digest == digest, blob_links.c.size != size)
                .values(size=size)
            ).rowcount
            fixed += c.execute(
                sa.update(blobs)
                .where(blobs.c.digest == digest, blobs.c.size != size, blobs.c.state == LIVE)
                .values(size=size)
            ).rowcount
            return int(fixed)

    async def condemn(self, digest: str, size: int) -> None:
        """Corrupt bytes: claim the blob ``deleting`` (creating its row if needed), as the
        collector claims garbage; the caller then removes the bytes and forgets the row. An
        upload of this digest waits meanwhile, then stores it again."""
        with self.db.write() as c:
            at = now()
            c.execute(
                self.db._insert(blobs)
                .values(digest=digest, size=size, state=DELETING, touched_at=at, created_at=at)
                .on_conflict_do_nothing(index_elements=["digest"])
            )
            stmt = sa.select(blobs.c.state).where(blobs.c.digest == digest)
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update()
            c.execute(stmt)
            c.execute(sa.update(blobs).where(blobs.c.digest == digest).values(state=DELETING))

    async def hand_to_gc(self, digests: Sequence[str]) -> int:
        """Bytes no metadata knows: record them as collector candidates (their grace period
        starts now; the collector re-checks them under their locks). Returns how many."""
        if not digests:
            return 0
        at = now()
        with self.db.write() as c:
            c.execute(
                self.db._insert(unreferenced_blobs)
                .values([{"digest": d, "since": at} for d in digests])
                .on_conflict_do_nothing(index_elements=["digest"])
            )
        return len(digests)
