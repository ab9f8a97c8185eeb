"""namespace_usage: storage each namespace uses (each blob once, plus manifest bytes), kept as a
counter, and its quota; filled from what exists

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-07 23:20:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "namespace_usage",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("used", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=True),
        sa.Column("warn_percent", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    op.get_bind().execute(
        sa.text(
            "INSERT INTO namespace_usage (owner_id, used, updated_at)"
            " SELECT a.id,"
            "  (SELECT COALESCE(SUM(size), 0) FROM ("
            "     SELECT l.digest, MAX(l.size) AS size FROM blob_links l"
            "     JOIN repositories r ON r.id = l.repository_id WHERE r.owner_id = a.id"
            "     GROUP BY l.digest) AS distinct_blobs)"
            "  + (SELECT COALESCE(SUM(m.size), 0) FROM manifests m"
            "     JOIN repositories r ON r.id = m.repository_id WHERE r.owner_id = a.id),"
            "  :at FROM accounts a"
        ),
        {"at": datetime.now(UTC)},
    )


def downgrade() -> None:
    op.drop_table("namespace_usage")
