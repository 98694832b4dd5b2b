"""A Service User's in-flight limit may be unset: the deployment's setting then applies.

Until now every user row carried ``max_in_flight`` (default 8), so the
``delivery_max_in_flight`` setting, documented as the limit "unless the user
sets its own", never applied. The column becomes nullable without a default;
rows written before keep the value they hold (an 8 set on purpose cannot be
told from a defaulted one: `chfw users set-in-flight USER default` clears it).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.alter_column(
            "max_in_flight", existing_type=sa.Integer(), nullable=True, server_default=None
        )


def downgrade() -> None:
    op.execute("UPDATE service_users SET max_in_flight = 8 WHERE max_in_flight IS NULL")
    with op.batch_alter_table("service_users") as batch:
        batch.alter_column(
            "max_in_flight", existing_type=sa.Integer(), nullable=False, server_default="8"
        )
