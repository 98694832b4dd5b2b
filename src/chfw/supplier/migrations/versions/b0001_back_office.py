"""The supplier's back office: received alerts, each CH's active firmware, rejections, pilots.

The first revision of the back office's own chain. Until the chains were split
(issue 21) the DSP's chain made these tables (its revisions 0002, 0006 and 0007,
now empty for new databases). A database made then already has them: each
table is created only when absent, and a ``bo_hubs`` from before 0006 gets its
``latest_counter``, so such a database is adopted as it is.

Revision ID: b0001
Revises:
Create Date: 2026-12-07

Written out by hand to mirror chfw.supplier.schema; tests compare the two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_COUNTER = re.compile(r":(0|[1-9][0-9]{0,19})$")


def _padded(response_id: str) -> str:
    """The ResponseID's counter as 20 digits ('' if none), as bo_hubs.latest_counter holds it."""
    match = _COUNTER.search(response_id)
    if match is None or int(match[1]) >= 1 << 64:
        return ""
    return match[1].zfill(20)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "bo_alerts" not in existing:
        _create_back_office()
    elif "latest_counter" not in {
        c["name"] for c in sa.inspect(op.get_bind()).get_columns("bo_hubs")
    }:
        _add_latest_counter()
    if "revoked_sessions" not in existing:
        op.create_table(
            "revoked_sessions",
            sa.Column("session_id", sa.String(32), nullable=False),
            sa.Column("expires_at", UTC_TIME, nullable=False),
            sa.PrimaryKeyConstraint("session_id", name="pk_revoked_sessions"),
        )
        op.create_index("ix_revoked_sessions_expires_at", "revoked_sessions", ["expires_at"])


def _add_latest_counter() -> None:
    """What DSP revision 0006 did to the back office: order a CH's alerts by counter too."""
    op.add_column(
        "bo_hubs",
        sa.Column("latest_counter", sa.String(20), nullable=False, server_default=sa.text("''")),
    )
    hubs = sa.table(
        "bo_hubs",
        sa.column("device_id", sa.String),
        sa.column("latest_response_id", sa.String),
        sa.column("latest_counter", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(hubs.c.device_id, hubs.c.latest_response_id)).all()
    update = (
        sa.update(hubs)
        .where(hubs.c.device_id == sa.bindparam("d"))
        .values(latest_counter=sa.bindparam("c"))
    )
    values = [{"d": device, "c": _padded(rid)} for device, rid in rows if _padded(rid)]
    for start in range(0, len(values), 5000):
        conn.execute(update, values[start : start + 5000])


def _create_back_office() -> None:
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
        sa.Column("latest_counter", sa.String(20), nullable=False, server_default=sa.text("''")),
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
    op.drop_index("ix_revoked_sessions_expires_at", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
    for table in (
        "bo_pilot_members",
        "bo_pilots",
        "bo_rejections",
        "bo_firmware_events",
        "bo_hubs",
        "bo_alerts",
    ):
        op.drop_table(table)
