"""SQL implementation of the metadata stores (SQLite and PostgreSQL through SQLAlchemy Core).

Store methods are ``async`` for the protocol; on SQLite the statements are short local calls and
run inline on the event loop (a thread hop would cost more than the query).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cargobay.errors import ManifestBlobUnknown, ManifestChildUnknown, Unavailable, VersionInUse
from cargobay.metadata.base import Manifest, NewManifest, Referrer, StoredManifest, Upload
from cargobay.metadata.schema import (
    blob_links,
    manifest_refs,
    manifests,
    repositories,
    tags,
    uploads,
)
from cargobay.oci.digest import Digest
from cargobay.oci.names import RepositoryName, Tag

T = TypeVar("T")


def _build_first(build: Callable[[Sequence[Any]], T], rows: list[Sequence[Any]]) -> T | None:
    return build(rows[0]) if rows else None


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # raw SQLite rows
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _current_task() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class _Reader:
    """A read-only SQLite connection with a row cache that lives until the next commit.

    Freshness is checked (``PRAGMA data_version``) once per request task: the reads one
    request makes see the database as of its first read, or later; and a request's own writes
    force a new check.
    """

    MAX_CACHED_BYTES = 32 * 1024 * 1024
    MAX_ROW_BYTES = 256 * 1024

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
        )
        self.connection.execute("PRAGMA query_only=1")
        self.version = -1
        self.cache: dict[tuple[str, tuple[Any, ...]], object] = {}
        self.cached_bytes = 0
        self.checked_by: object | None = None

    def query(
        self, sql: str, params: dict[str, Any], build: Callable[[list[Sequence[Any]]], T]
    ) -> T:
        task = _current_task()
        if task is None or task is not self.checked_by:
            (version,) = self.connection.execute("PRAGMA data_version").fetchone()
            self.checked_by = task
            if version != self.version:
                self.cache.clear()
                self.cached_bytes = 0
                self.version = version
        key = (sql, tuple(params.values()))
        try:
            return self.cache[key]  # type: ignore[return-value]
        except KeyError:
            pass
        rows: list[Sequence[Any]] = self.connection.execute(sql, params).fetchall()
        value = build(rows)
        size = sum(len(v) for row in rows for v in row if isinstance(v, (bytes, str)))
        if size <= self.MAX_ROW_BYTES:
            if self.cached_bytes + size > self.MAX_CACHED_BYTES:
                self.cache.clear()
                self.cached_bytes = 0
            self.cache[key] = value
            self.cached_bytes += size + 200
        return value

    def close(self) -> None:
        self.connection.close()


@contextlib.contextmanager
def _unavailable_on_lost_database() -> Iterator[None]:
    """Connection failures (the server is down, the network is gone) become Unavailable, which
    clients see as 503 with Retry-After. Integrity errors and bugs stay what they are."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if exc.connection_invalidated or not _is_lock_error(exc):
            raise Unavailable("the metadata database is unavailable") from exc
        raise


def _is_lock_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text or "deadlock" in text or "serializ" in text


class _Database:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._local = threading.local()
        self._readers: list[_Reader] = []
        self._sqlite_path = engine.url.database if self.dialect == "sqlite" else None

    def fetch_one(
        self, sql: str, params: dict[str, Any], build: Callable[[Sequence[Any]], T]
    ) -> T | None:
        """``build(row)`` for the first row of a read-only hot-path query, or None."""
        return self.query(sql, params, partial(_build_first, build))

    def query(
        self, sql: str, params: dict[str, Any], build: Callable[[list[Sequence[Any]]], T]
    ) -> T:
        """``build(rows)`` of a read-only hot-path query.

        On SQLite this skips the pool, BEGIN and ROLLBACK: each thread keeps a read-only
        connection in autocommit mode, and a single SELECT sees the last committed state.
        Results are cached per thread while ``PRAGMA data_version`` stays the same, i.e. until any
        other connection (another worker, or this process's writer) commits: a read never
        returns anything older than the last commit.
        """
        if self._sqlite_path is None:
            with self.read() as c:
                rows: list[Sequence[Any]] = [tuple(r) for r in c.execute(sa.text(sql), params)]
            return build(rows)
        try:
            reader: _Reader | None = getattr(self._local, "reader", None)
            if reader is None:
                reader = self._local.reader = _Reader(self._sqlite_path)
                self._readers.append(reader)
            return reader.query(sql, params, build)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise Unavailable("the metadata database is unavailable") from exc

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        self.engine.dispose()

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One transaction; it commits when the block ends, or rolls back on an error. A lost
        database raises Unavailable (nothing was written)."""
        try:
            with _unavailable_on_lost_database(), self.engine.connect() as connection:
                connection = connection.execution_options(sqlite_begin="IMMEDIATE")
                with connection.begin():
                    yield connection
        finally:
            reader: _Reader | None = getattr(self._local, "reader", None)
            if reader is not None:
                reader.checked_by = None  # see our own write on the next read

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with _unavailable_on_lost_database(), self.engine.connect() as connection:
            yield connection

    def ping(self) -> None:
        """Raise Unavailable unless the database answers."""
        with self.read() as c:
            c.execute(sa.text("SELECT 1"))

    def bytewise(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """``column`` compared byte by byte (the spec's lexical order), whatever the locale."""
        return column.collate("C") if self.dialect == "postgresql" else column

    def repository_id(self, connection: sa.Connection, name: str) -> int | None:
        return connection.execute(
            sa.select(repositories.c.id).where(repositories.c.name == name)
        ).scalar()

    def ensure_repository(self, connection: sa.Connection, name: str) -> int:
        connection.execute(
            self._insert(repositories)
            .values(name=name, created_at=now())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        repository_id = self.repository_id(connection, name)
        assert repository_id is not None
        return repository_id

    def upsert(self, table: sa.Table, keys: list[str], values: dict[str, Any]) -> Any:
        stmt = self._insert(table).values(**values)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
        )


class SqlRepositoryStore:
    def __init__(self, db: _Database) -> None:
        self.db = db

    async def exists(self, name: RepositoryName) -> bool:
        with self.db.read() as c:
            return self.db.repository_id(c, name) is not None

    async def list_names(self, *, last: str | None, limit: int) -> list[RepositoryName]:
        name = self.db.bytewise(repositories.c.name)
        stmt = sa.select(repositories.c.name).order_by(name).limit(limit)
        if last is not None:
            stmt = stmt.where(name > last)
        with self.db.read() as c:
            return [RepositoryName(n) for n in c.execute(stmt).scalars()]


class SqlBlobLinkStore:
    def __init__(self, db: _Database) -> None:
        self.db = db

    async def linked_size(self, repository: RepositoryName, digest: Digest) -> int | None:
        params = {"repository": repository, "digest": digest}
        return self.db.fetch_one(_LINKED_SIZE, params, _first_int)

    async def link(self, repository: RepositoryName, digest: Digest, size: int) -> None:
        with self.db.write() as c:
            repository_id = self.db.ensure_repository(c, repository)
            c.execute(
                self.db._insert(blob_links)
                .values(repository_id=repository_id, digest=digest, size=size, created_at=now())
                .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
            )

    async def unlink(self, repository: RepositoryName, digest: Digest) -> bool:
        with self.db.write() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return False
            result = c.execute(
                sa.delete(blob_links).where(
                    blob_links.c.repository_id == repository_id, blob_links.c.digest == digest
                )
            )
            return result.rowcount > 0


def _first_int(row: Sequence[Any]) -> int:
    return int(row[0])


def _manifest(repository: RepositoryName, row: Sequence[Any]) -> Manifest:
    digest, media_type, size, content, subject, artifact_type, created_at = row
    return Manifest(
        repository=repository,
        digest=Digest(digest),
        media_type=media_type,
        size=int(size),
        content=bytes(content),
        subject=Digest(subject) if subject else None,
        artifact_type=artifact_type,
        created_at=_aware(created_at),
    )


_LINKED_SIZE = (
    "SELECT l.size FROM blob_links l JOIN repositories r ON r.id = l.repository_id"
    " WHERE r.name = :repository AND l.digest = :digest"
)
_MANIFEST_SELECT = (
    "SELECT m.digest, m.media_type, m.size, m.content, m.subject, m.artifact_type, m.created_at"
)
_MANIFEST_BY_DIGEST = (
    f"{_MANIFEST_SELECT} FROM manifests m JOIN repositories r ON r.id = m.repository_id"
    " WHERE r.name = :repository AND m.digest = :reference AND m.deleted_at IS NULL"
)
_MANIFEST_BY_TAG = (
    f"{_MANIFEST_SELECT} FROM tags t JOIN repositories r ON r.id = t.repository_id"
    " JOIN manifests m ON m.id = t.manifest_id WHERE r.name = :repository AND t.name = :reference"
)


class SqlManifestStore:
    def __init__(self, db: _Database) -> None:
        self.db = db

    async def get(self, repository: RepositoryName, reference: Digest | Tag) -> Manifest | None:
        sql = _MANIFEST_BY_DIGEST if ":" in reference else _MANIFEST_BY_TAG
        params = {"repository": repository, "reference": reference}
        return self.db.fetch_one(sql, params, partial(_manifest, repository))

    def _missing(
        self, c: sa.Connection, table: sa.Table, repository_id: int, digests: Sequence[Digest]
    ) -> list[Digest]:
        wanted = set(digests)
        if not wanted:
            return []
        stmt = sa.select(table.c.digest).where(
            table.c.repository_id == repository_id, table.c.digest.in_(wanted)
        )
        if table is manifests:
            stmt = stmt.where(manifests.c.deleted_at.is_(None))
        found = set(c.execute(stmt).scalars())
        return sorted(wanted - found)

    async def put(
        self, repository: RepositoryName, manifest: NewManifest, tag: Tag | None
    ) -> StoredManifest:
        with self.db.write() as c:
            repository_id = self.db.ensure_repository(c, repository)
            missing = self._missing(c, blob_links, repository_id, manifest.blobs)
            if missing:
                raise ManifestBlobUnknown(
                    f"blob unknown to registry: {missing[0]}", {"digest": missing[0]}
                )
            missing = self._missing(c, manifests, repository_id, manifest.manifests)
            if missing:
                raise ManifestChildUnknown(
                    f"manifest unknown to registry: {missing[0]}", {"digest": missing[0]}
                )
            first_version = (
                c.execute(
                    sa.select(manifests.c.id).where(manifests.c.repository_id == repository_id)
                ).first()
                is None
            )
            at = now()
            fields = self._metadata(c, repository_id, manifest)
            row = c.execute(
                sa.select(manifests.c.id, manifests.c.deleted_at).where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest == manifest.digest,
                )
            ).first()
            inserted = None
            if row is None:
                # Another replica may insert the same manifest at the same moment: one wins.
                inserted = c.execute(
                    self.db._insert(manifests)
                    .values(
                        repository_id=repository_id,
                        digest=manifest.digest,
                        media_type=manifest.media_type,
                        size=len(manifest.content),
                        content=manifest.content,
                        subject=manifest.subject,
                        artifact_type=manifest.artifact_type,
                        annotations=manifest.annotations or None,
                        created_at=at,
                        updated_at=at,
                        kind=manifest.kind,
                        platform=manifest.platform,
                        **fields,
                    )
                    .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
                    .returning(manifests.c.id)
                ).scalar()
            if inserted is not None:
                manifest_id = inserted
                refs = [
                    {"manifest_id": manifest_id, "kind": "blob", "digest": d}
                    for d in set(manifest.blobs)
                ]
                refs += [
                    {"manifest_id": manifest_id, "kind": "manifest", "digest": d}
                    for d in set(manifest.manifests)
                ]
                if refs:
                    c.execute(sa.insert(manifest_refs), refs)
            else:
                if row is None:
                    row = c.execute(
                        sa.select(manifests.c.id, manifests.c.deleted_at).where(
                            manifests.c.repository_id == repository_id,
                            manifests.c.digest == manifest.digest,
                        )
                    ).one()
                manifest_id = row.id
                if row.deleted_at is not None:  # pushed again: active again
                    c.execute(
                        sa.update(manifests)
                        .where(manifests.c.id == manifest_id)
                        .values(
                            deleted_at=None, deleted_tags=None, deleted_with=None, updated_at=at
                        )
                    )
            self._mark_children(c, repository_id, manifest)
            if tag is not None:
                c.execute(
                    self.db.upsert(
                        tags,
                        ["repository_id", "name"],
                        {
                            "repository_id": repository_id,
                            "name": tag,
                            "manifest_id": manifest_id,
                            "updated_at": at,
                        },
                    )
                )
                c.execute(
                    sa.update(manifests).where(manifests.c.id == manifest_id).values(updated_at=at)
                )
            package_values: dict[str, Any] = {"updated_at": at}
            if manifest.subject is None:
                package_values.update(fields)
            c.execute(
                sa.update(repositories)
                .where(repositories.c.id == repository_id)
                .values(**package_values)
            )
            return StoredManifest(manifest_id, repository_id, first_version)

    def _metadata(
        self, c: sa.Connection, repository_id: int, manifest: NewManifest
    ) -> dict[str, str | None]:
        """The version's description, license and source: its own, else (an index) its first
        child's that has one."""
        fields = {
            "description": manifest.description,
            "license": manifest.license,
            "source_url": manifest.source_url,
        }
        if manifest.manifests and not all(fields.values()):
            rows = c.execute(
                sa.select(
                    manifests.c.digest,
                    manifests.c.description,
                    manifests.c.license,
                    manifests.c.source_url,
                ).where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest.in_(set(manifest.manifests)),
                )
            ).all()
            by_digest = {r.digest: r for r in rows}
            attestations = set(manifest.attestations)
            for digest in manifest.manifests:
                child = by_digest.get(digest)
                if child is None or digest in attestations:
                    continue
                for key in fields:
                    if fields[key] is None:
                        fields[key] = getattr(child, key)
        return fields

    def _mark_children(self, c: sa.Connection, repository_id: int, manifest: NewManifest) -> None:
        if not manifest.manifests:
            return
        attestations = set(manifest.attestations)
        for digest in set(manifest.manifests):
            values: dict[str, Any] = {"is_child": True}
            if digest in attestations:
                values["attestation"] = True
            platform = (manifest.child_platforms or {}).get(digest)
            where = [manifests.c.repository_id == repository_id, manifests.c.digest == digest]
            c.execute(sa.update(manifests).where(*where).values(**values))
            if platform:
                c.execute(
                    sa.update(manifests)
                    .where(*where, manifests.c.platform.is_(None))
                    .values(platform=platform)
                )

    async def delete(self, repository: RepositoryName, digest: Digest) -> bool:
        with self.db.write() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return False
            manifest_id = c.execute(
                sa.select(manifests.c.id).where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest == digest,
                    manifests.c.deleted_at.is_(None),
                )
            ).scalar()
            if manifest_id is None:
                return False
            delete_versions(c, repository_id, [manifest_id])
            return True

    async def add_downloads(self, counts: dict[tuple[str, str], int]) -> None:
        if not counts:
            return
        with self.db.write() as c:
            for (repository, digest), count in counts.items():
                c.execute(
                    sa.update(manifests)
                    .where(
                        manifests.c.digest == digest,
                        manifests.c.repository_id
                        == sa.select(repositories.c.id)
                        .where(repositories.c.name == repository)
                        .scalar_subquery(),
                    )
                    .values(download_count=manifests.c.download_count + count)
                )

    async def delete_tag(self, repository: RepositoryName, tag: Tag) -> bool:
        with self.db.write() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return False
            result = c.execute(
                sa.delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag)
            )
            return result.rowcount > 0

    async def list_tags(
        self, repository: RepositoryName, *, last: str | None, limit: int
    ) -> list[Tag] | None:
        with self.db.read() as c:
            repository_id = self.db.repository_id(c, repository)
            if repository_id is None:
                return None
            stmt = (
                sa.select(tags.c.name)
                .where(tags.c.repository_id == repository_id)
                .order_by(self.db.bytewise(tags.c.name))
                .limit(limit)
            )
            if last is not None:
                stmt = stmt.where(self.db.bytewise(tags.c.name) > last)
            return [Tag(t) for t in c.execute(stmt).scalars()]

    async def referrers(
        self, repository: RepositoryName, subject: Digest, artifact_type: str | None
    ) -> list[Referrer]:
        stmt = (
            sa.select(
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(
                repositories.c.name == repository,
                manifests.c.subject == subject,
                manifests.c.deleted_at.is_(None),
            )
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        if artifact_type is not None:
            stmt = stmt.where(manifests.c.artifact_type == artifact_type)
        with self.db.read() as c:
            rows = c.execute(stmt).all()
        return [
            Referrer(
                digest=Digest(r.digest),
                media_type=r.media_type,
                size=int(r.size),
                artifact_type=r.artifact_type,
                annotations=dict(r.annotations or {}),
            )
            for r in rows
        ]


def delete_versions(c: sa.Connection, package_id: int, ids: Sequence[int]) -> list[int]:
    """Soft-delete versions ``ids`` of a package, and the children of deleted indexes that no
    other active index references (they go with their index). Frees their tags (kept in
    ``deleted_tags`` for a restore). Raises VersionInUse if an active index that is not being
    deleted references one of them. Returns every id deleted."""
    at = now()
    active = manifests.c.deleted_at.is_(None)
    rows = c.execute(
        sa.select(manifests.c.id, manifests.c.digest).where(
            manifests.c.repository_id == package_id, manifests.c.id.in_(ids), active
        )
    ).all()
    targets = {r.id: r.digest for r in rows}
    # Children of indexes being deleted go with them (unless another active index uses them).
    index_children: dict[int, int] = {}
    for parent_id in list(targets):
        children = c.execute(
            sa.select(manifests.c.id, manifests.c.digest)
            .join(manifest_refs, manifest_refs.c.digest == manifests.c.digest)
            .where(
                manifest_refs.c.manifest_id == parent_id,
                manifest_refs.c.kind == "manifest",
                manifests.c.repository_id == package_id,
                active,
            )
        ).all()
        for child in children:
            if child.id not in targets:
                index_children[child.id] = parent_id
                targets[child.id] = child.digest
    # Refuse if an active index outside the deletion references any target.
    for version_id, digest in targets.items():
        users = c.execute(
            sa.select(manifests.c.id, manifests.c.digest)
            .join(manifest_refs, manifest_refs.c.manifest_id == manifests.c.id)
            .where(
                manifest_refs.c.kind == "manifest",
                manifest_refs.c.digest == digest,
                manifests.c.repository_id == package_id,
                active,
            )
        ).all()
        outside = [u for u in users if u.id not in targets]
        if outside:
            if version_id in index_children:
                del targets[version_id]  # shared with another index: it stays
                del index_children[version_id]
                continue
            raise VersionInUse(
                f"version {digest} is part of index {outside[0].digest}, which is not deleted;"
                " deleting it would break pulls of that index: delete the index (its"
                " platforms go with it) or delete both together",
                {"digest": digest, "index": outside[0].digest},
            )
    for version_id in targets:
        tag_names = list(
            c.execute(sa.select(tags.c.name).where(tags.c.manifest_id == version_id)).scalars()
        )
        c.execute(sa.delete(tags).where(tags.c.manifest_id == version_id))
        c.execute(
            sa.update(manifests)
            .where(manifests.c.id == version_id)
            .values(
                deleted_at=at,
                deleted_tags=tag_names or None,
                deleted_with=index_children.get(version_id),
            )
        )
    return list(targets)


class SqlUploadStore:
    def __init__(self, db: _Database) -> None:
        self.db = db

    async def create(self, upload_id: str, repository: RepositoryName) -> Upload:
        at = now()
        with self.db.write() as c:
            c.execute(
                sa.insert(uploads).values(
                    id=upload_id, repository=repository, started_at=at, touched_at=at
                )
            )
        return Upload(upload_id, repository, at, at)

    async def get(self, upload_id: str) -> Upload | None:
        with self.db.read() as c:
            row = c.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
        if row is None:
            return None
        return Upload(
            row.id, RepositoryName(row.repository), _aware(row.started_at), _aware(row.touched_at)
        )

    async def touch(self, upload_id: str) -> None:
        with self.db.write() as c:
            c.execute(sa.update(uploads).where(uploads.c.id == upload_id).values(touched_at=now()))

    async def delete(self, upload_id: str) -> None:
        with self.db.write() as c:
            c.execute(sa.delete(uploads).where(uploads.c.id == upload_id))

    async def expired(self, before: datetime) -> list[str]:
        with self.db.read() as c:
            return list(
                c.execute(sa.select(uploads.c.id).where(uploads.c.touched_at < before)).scalars()
            )


class SqlMetadata:
    """All SQL stores over one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        db = _Database(engine)
        self._db = db
        self.engine = engine
        self.repositories = SqlRepositoryStore(db)
        self.blobs = SqlBlobLinkStore(db)
        self.manifests = SqlManifestStore(db)
        self.uploads = SqlUploadStore(db)
        from cargobay.metadata.accounts import (
            SqlAccountStore,
            SqlPackageAccessStore,
            SqlSessionStore,
            SqlTokenStore,
        )
        from cargobay.metadata.packages import SqlPackageStore

        self.accounts = SqlAccountStore(db)
        self.tokens = SqlTokenStore(db)
        self.packages = SqlPackageAccessStore(db)
        self.package_records = SqlPackageStore(db)
        self.sessions = SqlSessionStore(db)

    def ping(self) -> None:
        """Raise Unavailable unless the database answers."""
        self._db.ping()

    def close(self) -> None:
        self._db.close()
