"""Where `chfw receiver sync` stopped reading each DSP's catch-up feed (issue 22 item 7).

Feed entries are filed as firmware events with ``version_source`` 'feed'; that
column already takes any short text, so only the cursor table is new.

Revision ID: b0002
Revises: b0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b0002"
down_revision: str | None = "b0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bo_feed_cursors",
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_bo_feed_cursors"),
    )


def downgrade() -> None:
    op.drop_table("bo_feed_cursors")
