"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` must produce exactly this."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

DIGEST = sa.String(160)
NAME = sa.String(255)
TS = sa.DateTime(timezone=True)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
)

blob_links = sa.Table(
    "blob_links",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_blob_links_digest", "digest"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("subject", DIGEST, nullable=True),
    sa.Column("artifact_type", sa.String(255), nullable=True),
    sa.Column("annotations", sa.JSON, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    sa.Index("ix_manifests_subject", "repository_id", "subject"),
)

#: What each manifest references: ``blob`` (config, layers) or ``manifest`` (index children).
manifest_refs = sa.Table(
    "manifest_refs",
    metadata,
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Index("ix_manifest_refs_digest", "digest"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id"), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_tags_manifest", "manifest_id"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("repository", NAME, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("touched_at", TS, nullable=False),
    sa.Index("ix_uploads_touched_at", "touched_at"),
)
