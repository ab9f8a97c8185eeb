"""packages: metadata, versions, downloads, soft deletion

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("license", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("source_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("updated_at", TS, nullable=True))
        batch_op.add_column(sa.Column("deleted_at", TS, nullable=True))
        batch_op.add_column(sa.Column("deleted_name", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_repositories_owner", ["owner_id"], unique=False)
        batch_op.create_index("ix_repositories_deleted_at", ["deleted_at"], unique=False)
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("platform", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("is_child", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("attestation", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("description", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("license", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("source_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(
            sa.Column("download_count", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", TS, nullable=True))
        batch_op.add_column(sa.Column("deleted_at", TS, nullable=True))
        batch_op.add_column(sa.Column("deleted_tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("deleted_with", sa.Integer(), nullable=True))
        batch_op.create_index("ix_manifests_deleted_at", ["deleted_at"], unique=False)
    op.create_table(
        "unreferenced_blobs",
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("unreferenced_blobs")
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_index("ix_manifests_deleted_at")
        for column in (
            "deleted_with",
            "deleted_tags",
            "deleted_at",
            "updated_at",
            "download_count",
            "source_url",
            "license",
            "description",
            "attestation",
            "is_child",
            "platform",
            "kind",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_index("ix_repositories_deleted_at")
        batch_op.drop_index("ix_repositories_owner")
        for column in (
            "deleted_name",
            "deleted_at",
            "updated_at",
            "source_url",
            "license",
            "description",
        ):
            batch_op.drop_column(column)
