"""The initial chfw schema: users, CSPs, estate, inventory history, outbox, counters, audit.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out by hand to mirror chfw.dsp.store.schema; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "service_users",
        sa.Column("user_id", EUI64, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(100), nullable=False),
        sa.Column("duis_version", sa.String(8), nullable=False),
        sa.Column("endpoint_url", sa.String(2000), nullable=True),
        sa.Column("tls_ca_bundle", sa.String(2000), nullable=True),
        sa.Column("tls_client_cert", sa.String(2000), nullable=True),
        sa.Column("tls_client_key", sa.String(2000), nullable=True),
        sa.Column("inventory_token_hash", sa.String(200), nullable=True),
        sa.Column("max_in_flight", sa.Integer, nullable=False, server_default="8"),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_service_users"),
    )
    op.create_table(
        "csps",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_csps"),
        sa.UniqueConstraint("token_id", name="uq_csps_token_id"),
    )
    op.create_table(
        "hubs",
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("csp_region", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, server_default="commissioned"),
        sa.Column("active_firmware", sa.String(64), nullable=True),
        sa.Column("firmware_changed_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_hubs"),
    )
    op.create_table(
        "meter_points",
        sa.Column("identifier", sa.String(13), nullable=False),
        sa.Column("fuel", sa.String(16), nullable=False),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("import_supplier", EUI64, nullable=True),
        sa.Column("export_supplier", EUI64, nullable=True),
        sa.Column("gas_supplier", EUI64, nullable=True),
        sa.PrimaryKeyConstraint("identifier", name="pk_meter_points"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["hubs.device_id"],
            name="fk_meter_points_device_id_hubs",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_meter_points_device_id", "meter_points", ["device_id"])
    op.create_table(
        "firmware_history",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("originator_counter", sa.String(20), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reported_version", sa.String(64), nullable=True),
        sa.Column("version_before", sa.String(64), nullable=True),
        sa.Column("version_after", sa.String(64), nullable=True),
        sa.Column("occurred_at", UTC_TIME, nullable=True),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.Column("csp", sa.String(100), nullable=True),
        sa.Column("alerts_created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_firmware_history"),
        sa.UniqueConstraint(
            "device_id", "originator_counter", "event", name="uq_firmware_history_outcome_key"
        ),
    )
    op.create_index("ix_firmware_history_device_id", "firmware_history", ["device_id", "id"])
    op.create_index("ix_firmware_history_recorded_at", "firmware_history", ["recorded_at"])
    op.create_table(
        "intake_rejections",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("csp", sa.String(100), nullable=True),
        sa.Column("device_id", EUI64, nullable=True),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("payload_hex", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intake_rejections"),
    )
    op.create_index("ix_intake_rejections_received_at", "intake_rejections", ["received_at"])
    op.create_table(
        "outbox",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("response_id", sa.String(80), nullable=False),
        sa.Column("user_id", EUI64, nullable=False),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("alert_code", sa.String(8), nullable=False),
        sa.Column("duis_version", sa.String(8), nullable=False),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("history_id", sa.BigInteger, nullable=True),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("lease_until", UTC_TIME, nullable=True),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("response_id", name="uq_outbox_response_id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_order", "outbox", ["device_id", "user_id", "id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("attempted_at", UTC_TIME, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_outbox_id", "delivery_attempts", ["outbox_id"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("next_value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )


def downgrade() -> None:
    for table in (
        "audit_log",
        "counters",
        "delivery_attempts",
        "outbox",
        "intake_rejections",
        "firmware_history",
        "meter_points",
        "hubs",
        "csps",
        "service_users",
    ):
        op.drop_table(table)
