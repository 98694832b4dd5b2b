"""Parked outcomes: CS06 outcomes for CHs not in the estate yet, kept until it has them.

Before this revision such an outcome was answered 422 and only recorded as a
rejection. It is now kept here (answered ``parked``) and processed by the
``chfw estate import`` that adds its CH (issue 20 item 3).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_outcomes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("device_id", sa.String(16), nullable=False),
        sa.Column("originator_counter", sa.String(20), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("csp", sa.String(100), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_parked_outcomes"),
        sa.UniqueConstraint(
            "device_id",
            "sender",
            "originator_counter",
            "event",
            name="uq_parked_outcomes_identity",
        ),
    )


def downgrade() -> None:
    op.drop_table("parked_outcomes")
