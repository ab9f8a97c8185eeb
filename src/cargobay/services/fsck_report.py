"""What one ``cargobay fsck`` run found and repaired (:mod:`cargobay.services.fsck`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FsckReport:
    verified: bool
    repaired: bool
    #: A garbage collection was running: nothing was checked (repairs need it stopped).
    skipped: bool = False
    blobs_known: int = 0
    blobs_stored: int = 0
    manifests_checked: int = 0
    bytes_verified: int = 0
    #: Bytes gone: {digest, links (repositories), versions ([repository, digest]...)}.
    missing: list[dict[str, Any]] = field(default_factory=list)
    #: Stored size differs from the metadata's: {digest, stored, recorded}.
    size_mismatch: list[dict[str, Any]] = field(default_factory=list)
    #: Bytes that hash to something else: {digest, actual, versions}.
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    #: Manifests whose bytes don't match: {repository, digest, tags, problem}.
    bad_manifests: list[dict[str, Any]] = field(default_factory=list)
    #: Stored bytes no metadata knows: {digest, size}.
    orphans: list[dict[str, Any]] = field(default_factory=list)
    #: What the repairs did.
    links_dropped: int = 0
    rows_dropped: int = 0
    sizes_fixed: int = 0
    corrupt_removed: int = 0
    orphans_to_gc: int = 0
    #: Problems left for the operator (after repairs): one sentence each.
    unrepaired: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> int:
        return (
            len(self.missing)
            + len(self.size_mismatch)
            + len(self.corrupt)
            + len(self.bad_manifests)
            + len(self.orphans)
        )

    @property
    def clean(self) -> bool:
        """Nothing found, or (repairing) nothing left that needs the operator."""
        if self.skipped:
            return False
        return not self.unrepaired if self.repaired else self.problems == 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"problems": self.problems, "clean": self.clean}

    def summary(self) -> str:
        if self.skipped:
            return "fsck: skipped, a garbage collection is running; try again when it is done"
        lines = [
            f"fsck: {self.blobs_known} blobs known, {self.blobs_stored} stored,"
            f" {self.manifests_checked} manifests checked"
            + (f", {self.bytes_verified} bytes verified" if self.verified else "")
            + f"; {self.problems} problems ({len(self.missing)} missing,"
            f" {len(self.size_mismatch)} wrong size, {len(self.corrupt)} corrupt,"
            f" {len(self.bad_manifests)} bad manifests, {len(self.orphans)} orphans);"
            f" {self.seconds:.1f}s"
        ]
        for item in self.missing:
            lines.append(f"  missing  {item['digest']}")
        for item in self.size_mismatch:
            lines.append(
                f"  size     {item['digest']}: stored {item['stored']}, recorded {item['recorded']}"
            )
        for item in self.corrupt:
            lines.append(f"  corrupt  {item['digest']}: the bytes hash to {item['actual']}")
        for item in self.bad_manifests:
            lines.append(f"  manifest {item['repository']}@{item['digest']}: {item['problem']}")
        for item in self.orphans:
            lines.append(f"  orphan   {item['digest']} ({item['size']} bytes)")
        if self.repaired:
            lines.append(
                f"repaired: {self.links_dropped} links and {self.rows_dropped} rows dropped,"
                f" {self.sizes_fixed} sizes corrected, {self.corrupt_removed} corrupt blobs"
                f" removed, {self.orphans_to_gc} orphans handed to the garbage collector"
            )
            lines.extend(f"  not repaired: {text}" for text in self.unrepaired)
        return "\n".join(lines)
