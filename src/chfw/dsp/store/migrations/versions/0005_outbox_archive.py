"""Archive tables for delivered alerts and their attempts (`chfw outbox archive`).

A GB-wide wave leaves tens of millions of delivered rows in the outbox. They
never change again, but every one of them keeps entries in the outbox's
indexes and is read by anything that counts or lists the outbox. Moving those
past the retention period into these tables keeps the outbox the size of the
work in hand; the archive keeps each alert's signed document and attempts, so
"was this alert delivered, when, to whom" can still be answered. The attempts
moved are also counted by outcome, so the all-time attempt counts stay whole.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)


def upgrade() -> None:
    op.create_table(
        "outbox_archive",
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("response_id", sa.String(80), nullable=False),
        sa.Column("user_id", EUI64, nullable=False),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("alert_code", sa.String(8), nullable=False),
        sa.Column("duis_version", sa.String(8), nullable=False),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("history_id", sa.BigInteger, nullable=True),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("delivered_at", UTC_TIME, nullable=False),
        sa.Column("archived_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_archive"),
        sa.UniqueConstraint("response_id", name="uq_outbox_archive_response_id"),
    )
    op.create_index("ix_outbox_archive_device_id", "outbox_archive", ["device_id", "id"])
    op.create_index("ix_outbox_archive_delivered_at", "outbox_archive", ["delivered_at"])
    op.create_table(
        "delivery_attempts_archive",
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("attempted_at", UTC_TIME, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts_archive"),
    )
    op.create_index(
        "ix_delivery_attempts_archive_outbox_id", "delivery_attempts_archive", ["outbox_id"]
    )
    op.create_table(
        "archived_attempt_totals",
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("outcome", name="pk_archived_attempt_totals"),
    )


def downgrade() -> None:
    op.drop_table("archived_attempt_totals")
    op.drop_table("delivery_attempts_archive")
    op.drop_table("outbox_archive")
