"""packages show once a version was pushed: those with versions from before 0003 (when
``updated_at`` was added, empty) get the time of their newest version

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE repositories SET updated_at = (SELECT MAX(m.created_at) FROM manifests m"
        " WHERE m.repository_id = repositories.id)"
        " WHERE updated_at IS NULL"
        " AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = repositories.id)"
    )


def downgrade() -> None:
    pass  # the times set stay right
