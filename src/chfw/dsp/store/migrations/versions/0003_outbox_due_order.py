"""The outbox claim index covers the claim's order: (state, next_attempt_at, id).

With only (state, next_attempt_at), PostgreSQL sorted every due row sharing a
next_attempt_at before taking the first batch, so a deep backlog (alerts
enqueued together share that time) made each claim cost O(backlog): measured
on a 200,000-alert backlog, delivery fell from ~1,670 to ~365 alerts/s.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
