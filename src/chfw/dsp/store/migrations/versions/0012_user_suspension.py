"""Service Users: delivery suspended after a run of permanent refusals.

- ``refusals_in_a_row``: permanent refusals (400/413) from the user's endpoint since
  its last 2xx; ``refusals_since``: when that run began.
- ``suspended_at``/``suspended_reason``: set when the run reaches
  ``suspend_after_refusals``; the user's alerts then stay pending, unsent, until
  ``chfw users resume``.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.add_column(
            sa.Column("refusals_in_a_row", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("refusals_since", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("suspended_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("suspended_reason", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.drop_column("suspended_reason")
        batch.drop_column("suspended_at")
        batch.drop_column("refusals_since")
        batch.drop_column("refusals_in_a_row")
