"""``cargobay backup`` and ``cargobay restore`` for the embedded default (SQLite + files).

A backup is consistent while pushes go on:

1. the garbage collector's lock is taken (waiting for a running collection to end), so no blob
   is removed until the copy is done;
2. the database is copied with SQLite's online backup API: the metadata as of one commit;
3. every blob that copy needs (linked, or listed by a manifest) is copied (or hard-linked) from
   the store. Blobs are immutable and content-addressed, and an upload stores its bytes before it
   commits its link, so each one is there. Upload sessions are left out (their rows too); a
   ``blobs`` row whose bytes were not stored yet is dropped from the copy.

The backup directory holds ``cargobay.db``, ``blobs/``, the key files (registry-token key, the
key encrypting webhook secrets), and ``BACKUP.json`` (what was copied). ``restore`` copies it
into an empty data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cargobay.errors import CargobayError
from cargobay.metadata import snapshot
from cargobay.oci.digest import Digest
from cargobay.ports.maintenance import GcStore
from cargobay.storage.filesystem import FilesystemBlobStore

DATABASE = "cargobay.db"
MANIFEST = "BACKUP.json"
#: How long to wait for a running garbage collection to end.
LOCK_WAIT = 600.0

#: Called with how many blobs are copied so far and the total.
Progress = Callable[[int, int], None]


class BackupFailed(CargobayError):
    """the backup or restore could not be made"""


@dataclass
class BackupReport:
    directory: str
    started_at: str
    blobs: int = 0
    bytes: int = 0
    hard_linked: bool = False
    database_bytes: int = 0
    #: Files copied beside the database (the key files).
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        how = "hard-linked" if self.hard_linked else "copied"
        return (
            f"backup: {self.directory}: database ({self.database_bytes} bytes) and"
            f" {self.blobs} blobs ({self.bytes} bytes) {how} in {self.seconds:.1f}s"
        )


def _copy(source: str, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        os.link(source, target)
        return
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)


@contextlib.contextmanager
def _collector_stopped(gc: GcStore, wait: float) -> Iterator[None]:
    """Hold the garbage collector's lock (no collection starts, across processes)."""
    deadline = time.monotonic() + wait
    while True:
        with gc.exclusive() as mine:
            if mine:
                yield
                return
        if time.monotonic() > deadline:
            raise BackupFailed("a garbage collection is still running; try again later")
        time.sleep(1.0)


def backup(
    target: Path,
    *,
    database: Path,
    gc: GcStore,
    store: FilesystemBlobStore,
    extra_files: list[Path],
    link: bool = False,
    progress: Progress | None = None,
) -> BackupReport:
    """Back the registry up into ``target`` (a new or empty directory)."""
    if target.exists() and any(target.iterdir()):
        raise BackupFailed(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = BackupReport(
        str(target), datetime.now(UTC).isoformat(timespec="seconds"), hard_linked=link
    )
    copy = target / DATABASE
    into = FilesystemBlobStore(target)
    with _collector_stopped(gc, LOCK_WAIT):
        snapshot.snapshot(database, copy)
        needed, rows_only = snapshot.blob_digests(copy)
        total = len(needed) + len(rows_only)
        lost = []
        for digest in sorted(needed | rows_only):
            source = store.local_path(Digest(digest))
            destination = into.local_path(Digest(digest))
            assert source is not None and destination is not None
            try:
                _copy(source, Path(destination), link)
            except FileNotFoundError:
                lost.append(digest)
                continue
            report.blobs += 1
            report.bytes += os.stat(destination).st_size
            if progress is not None:
                progress(report.blobs, total)
    if set(lost) & needed:
        # Only possible if bytes were removed behind the registry's back: `cargobay fsck`.
        missing = sorted(set(lost) & needed)
        raise BackupFailed(
            f"{len(missing)} blobs the metadata needs are not stored (first: {missing[0]});"
            " run `cargobay fsck`"
        )
    snapshot.trim(copy, set(lost))
    report.database_bytes = copy.stat().st_size
    for path in extra_files:
        if path.is_file():
            shutil.copy2(path, target / path.name)
            report.files.append(path.name)
    report.seconds = time.monotonic() - started
    (target / MANIFEST).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report


def restore(source: Path, data_dir: Path, *, link: bool = False) -> dict[str, object]:
    """Copy the backup ``source`` into ``data_dir``, which must hold no database yet. Returns
    what the backup's ``BACKUP.json`` says."""
    manifest = source / MANIFEST
    if not manifest.is_file() or not (source / DATABASE).is_file():
        raise BackupFailed(f"{source} is not a cargobay backup (no {MANIFEST} or {DATABASE})")
    if (data_dir / DATABASE).exists():
        raise BackupFailed(
            f"{data_dir} already holds a registry ({DATABASE}); restore into"
            " an empty data directory"
        )
    described: dict[str, object] = json.loads(manifest.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = source / "blobs"
    if blobs.is_dir():
        for path in sorted(blobs.rglob("*")):
            if path.is_file():
                _copy(str(path), data_dir / path.relative_to(source), link)
    files = described.get("files")
    for name in files if isinstance(files, list) else []:
        shutil.copy2(source / str(name), data_dir / str(name))
    # The database last: a data directory with a database is a registry.
    _copy(str(source / DATABASE), data_dir / DATABASE, False)
    return described
