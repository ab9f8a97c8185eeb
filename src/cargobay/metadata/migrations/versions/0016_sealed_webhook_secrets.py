"""room for encrypted webhook secrets (the server encrypts the plain-text ones it finds)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(255),
            type_=sa.String(1024),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(1024),
            type_=sa.String(255),
            existing_nullable=True,
        )
