"""trusted publishing: trust policies of source repositories, exchanged ID tokens

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trust_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("audience", sa.String(length=255), nullable=True),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["source_repositories.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trust_policies", schema=None) as batch_op:
        batch_op.create_index("ix_trust_policies_repository", ["repository_id"], unique=False)
        batch_op.create_index("ix_trust_policies_issuer", ["issuer"], unique=False)
    op.create_table(
        "seen_id_tokens",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    with op.batch_alter_table("seen_id_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_seen_id_tokens_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("seen_id_tokens")
    op.drop_table("trust_policies")
