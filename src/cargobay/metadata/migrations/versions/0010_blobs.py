"""blobs (one row per stored blob, locked by the garbage collector and by every path that
adds a reference to it; filled from the blob links and manifest references that exist) and
immutable tag rules

Revision ID: 0010
Revises: 0004
Create Date: 2026-12-07 22:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="live", nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index("ix_blobs_state", ["state"], unique=False)
    op.create_table(
        "immutable_tag_rules",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"]),
        sa.PrimaryKeyConstraint("repository_id", "pattern"),
    )
    # Every blob something links or references today is live from now on (its grace starts now).
    at = datetime.now(UTC)
    op.get_bind().execute(
        sa.text(
            "INSERT INTO blobs (digest, size, state, touched_at, created_at)"
            " SELECT digest, MAX(size), 'live', :at, :at FROM ("
            "  SELECT digest, size FROM blob_links"
            "  UNION ALL SELECT digest, 0 FROM manifest_refs WHERE kind = 'blob'"
            " ) AS known GROUP BY digest"
        ),
        {"at": at},
    )


def downgrade() -> None:
    op.drop_table("immutable_tag_rules")
    op.drop_table("blobs")
