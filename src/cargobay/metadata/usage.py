"""Storage used by a package or a namespace, two ways: ``stored`` (each blob once, what the
registry keeps on disk for them) and ``as_pushed`` (each version's blobs counted for every
version, what the pushes would take with nothing shared). Manifest bytes count in both.
Deleted versions still in their restore window count: they still take the space."""

from __future__ import annotations

import sqlalchemy as sa

from cargobay.metadata.database import Database, offloaded
from cargobay.ports.usage import Usage

_PACKAGES_OF_OWNER = "SELECT id FROM repositories WHERE owner_id = :owner"

_USAGE = """
SELECT
  (SELECT COALESCE(SUM(size), 0) FROM (
     SELECT l.digest, MAX(l.size) AS size FROM blob_links l
     WHERE l.repository_id IN ({packages}) GROUP BY l.digest) AS distinct_blobs),
  (SELECT COUNT(DISTINCT l.digest) FROM blob_links l WHERE l.repository_id IN ({packages})),
  (SELECT COALESCE(SUM(m.size), 0) FROM manifests m WHERE m.repository_id IN ({packages})),
  (SELECT COUNT(*) FROM manifests m WHERE m.repository_id IN ({packages})),
  (SELECT COALESCE(SUM(l.size), 0) FROM manifests m
     JOIN manifest_refs r ON r.manifest_id = m.id AND r.kind = 'blob'
     JOIN blob_links l ON l.repository_id = m.repository_id AND l.digest = r.digest
     WHERE m.repository_id IN ({packages}))
"""


@offloaded
class SqlUsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _usage(self, packages: str, params: dict[str, int]) -> Usage:
        with self.db.read() as c:
            row = c.execute(sa.text(_USAGE.format(packages=packages)), params).one()
        blob_bytes, blobs, manifest_bytes, versions, pushed_blob_bytes = (int(v) for v in row)
        return Usage(
            stored=blob_bytes + manifest_bytes,
            as_pushed=pushed_blob_bytes + manifest_bytes,
            blobs=blobs,
            versions=versions,
        )

    async def for_package(self, package_id: int) -> Usage:
        return self._usage(":package", {"package": package_id})

    async def for_packages(self, package_ids: list[int]) -> Usage:
        """The packages together: a blob several of them link is counted once."""
        if not package_ids:
            return Usage(0, 0, 0, 0)
        params = {f"p{i}": package_id for i, package_id in enumerate(package_ids)}
        return self._usage(", ".join(f":{key}" for key in params), params)

    async def for_owner(self, owner_id: int) -> Usage:
        """Every package of the owner, deleted ones not purged yet included; a blob several
        packages link is stored once."""
        return self._usage(_PACKAGES_OF_OWNER, {"owner": owner_id})
