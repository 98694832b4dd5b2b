"""The supplier's back office: received alerts, each CH's active firmware, rejections, pilots.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written out by hand to mirror chfw.receiver.schema; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bo_alerts",
        sa.Column("response_id", sa.String(80), nullable=False),
        sa.Column("alert_code", sa.String(8), nullable=False),
        sa.Column("device_id", EUI64, nullable=True),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("mismatch_alert_code", sa.String(8), nullable=True),
        sa.Column("schema_version", sa.String(8), nullable=False),
        sa.Column("alert_time", UTC_TIME, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("signer", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("response_id", name="pk_bo_alerts"),
    )
    op.create_index("ix_bo_alerts_device_id", "bo_alerts", ["device_id"])
    op.create_index("ix_bo_alerts_received_at", "bo_alerts", ["received_at"])
    op.create_index("ix_bo_alerts_alert_code", "bo_alerts", ["alert_code", "received_at"])
    op.create_table(
        "bo_hubs",
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("active_version", sa.String(64), nullable=True),
        sa.Column("changed_at", UTC_TIME, nullable=False),
        sa.Column("latest_alert_at", UTC_TIME, nullable=False),
        sa.Column("latest_response_id", sa.String(80), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("lookup_pending", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("lookup_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lookup_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_bo_hubs"),
    )
    op.create_table(
        "bo_firmware_events",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("response_id", sa.String(80), nullable=False),
        sa.Column("alert_code", sa.String(8), nullable=False),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("version_source", sa.String(16), nullable=False),
        sa.Column("alert_time", UTC_TIME, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bo_firmware_events"),
        sa.UniqueConstraint("response_id", name="uq_bo_firmware_events_response_id"),
    )
    op.create_index(
        "ix_bo_firmware_events_device_id", "bo_firmware_events", ["device_id", "alert_time"]
    )
    op.create_table(
        "bo_rejections",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("remote", sa.String(100), nullable=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("response_id", sa.String(80), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bo_rejections"),
    )
    op.create_index("ix_bo_rejections_at", "bo_rejections", ["at"])
    op.create_table(
        "bo_pilots",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("target_version", sa.String(64), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_bo_pilots"),
    )
    op.create_table(
        "bo_pilot_members",
        sa.Column("pilot", sa.String(100), nullable=False),
        sa.Column("device_id", EUI64, nullable=False),
        sa.PrimaryKeyConstraint("pilot", "device_id", name="pk_bo_pilot_members"),
        sa.ForeignKeyConstraint(
            ["pilot"],
            ["bo_pilots.name"],
            name="fk_bo_pilot_members_pilot_bo_pilots",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in (
        "bo_pilot_members",
        "bo_pilots",
        "bo_rejections",
        "bo_firmware_events",
        "bo_hubs",
        "bo_alerts",
    ):
        op.drop_table(table)
