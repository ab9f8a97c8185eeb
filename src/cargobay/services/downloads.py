"""Download counts of versions: counted in memory on the hot path, written in batches.

A manifest GET must not wait for a database write; counts are added up per process and flushed
every few seconds (and when the process stops), so a count can lag by that interval.
"""

from __future__ import annotations

from cargobay.ports.registry import ManifestStore


class DownloadCounter:
    def __init__(self, manifests: ManifestStore) -> None:
        self.manifests = manifests
        self.pending: dict[tuple[str, str], int] = {}

    def add(self, repository: str, digest: str) -> None:
        key = (repository, digest)
        self.pending[key] = self.pending.get(key, 0) + 1

    async def flush(self) -> None:
        """Write the counts gathered so far. On failure they are kept for the next flush."""
        if not self.pending:
            return
        batch, self.pending = self.pending, {}
        try:
            await self.manifests.add_downloads(batch)
        except BaseException:
            for key, count in batch.items():
                self.pending[key] = self.pending.get(key, 0) + count
            raise
