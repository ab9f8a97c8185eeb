"""retention policies (per package, and per user or organization as the default of its
packages) and the last pull of each version

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-07 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("untagged_days", sa.Integer(), nullable=True),
        sa.Column("keep_tags", sa.Integer(), nullable=True),
        sa.Column("tag_patterns", sa.JSON(), nullable=True),
        sa.Column("pulled_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", name="uq_retention_policies_owner"),
        sa.UniqueConstraint("repository_id", name="uq_retention_policies_repository"),
    )
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_pulled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_column("last_pulled_at")
    op.drop_table("retention_policies")
