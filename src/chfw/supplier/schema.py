"""The supplier's back office tables (``bo_`` prefix): its own metadata and migration chain.

A supplier runs its own database. Its migrations (:mod:`chfw.supplier.migrate`,
``chfw/supplier/migrations/``) mirror this module; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from chfw.shared.db.audit import audit_log_table
from chfw.shared.db.types import BIGID, EUI64, UTC_TIME, new_metadata, revoked_sessions_table

metadata = new_metadata()

# Every verified alert, raw, whatever its DCC alert code. ResponseID is the dedupe key.
bo_alerts = sa.Table(
    "bo_alerts",
    metadata,
    sa.Column("response_id", sa.String(80), primary_key=True),
    sa.Column("alert_code", sa.String(8), nullable=False),
    sa.Column("device_id", EUI64, nullable=True),
    sa.Column("firmware_version", sa.String(64), nullable=True),
    sa.Column("mismatch_alert_code", sa.String(8), nullable=True),  # N999: the alert not sent
    sa.Column("schema_version", sa.String(8), nullable=False),
    sa.Column("alert_time", UTC_TIME, nullable=False),  # ResponseDateTime
    sa.Column("received_at", UTC_TIME, nullable=False),
    sa.Column("signer", sa.String(500), nullable=False),  # subject of the trusted certificate
    sa.Column("digest", sa.String(64), nullable=False),  # hex SHA-256 of the signed content
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),  # replays seen
    sa.Column("document", sa.LargeBinary, nullable=False),  # the body exactly as received
    sa.Index("ix_bo_alerts_device_id", "device_id"),
    sa.Index("ix_bo_alerts_received_at", "received_at"),
    sa.Index("ix_bo_alerts_alert_code", "alert_code", "received_at"),
)

# The back office's view of each CH's active firmware, from the alerts.
bo_hubs = sa.Table(
    "bo_hubs",
    metadata,
    sa.Column("device_id", EUI64, primary_key=True),
    sa.Column("active_version", sa.String(64), nullable=True),  # None: version unknown (N999)
    sa.Column("changed_at", UTC_TIME, nullable=False),  # alert time the version became active
    # Alert time of the newest alert applied: an alert older than this is history only.
    sa.Column("latest_alert_at", UTC_TIME, nullable=False),
    sa.Column("latest_response_id", sa.String(80), nullable=False),
    # Its ResponseID counter, 20-digit zero-padded ('' if none): breaks alert-time ties.
    sa.Column("latest_counter", sa.String(20), nullable=False, server_default=sa.text("''")),
    sa.Column("updated_at", UTC_TIME, nullable=False),
    sa.Column("lookup_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("lookup_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lookup_error", sa.String(500), nullable=True),
)

# One entry per distinct firmware alert received for a CH.
bo_firmware_events = sa.Table(
    "bo_firmware_events",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("device_id", EUI64, nullable=False),
    sa.Column("response_id", sa.String(80), nullable=False, unique=True),
    sa.Column("alert_code", sa.String(8), nullable=False),
    sa.Column("firmware_version", sa.String(64), nullable=True),  # None until fetched (N999)
    # alert | inventory | unknown | feed (the DSP's catch-up feed: chfw receiver sync)
    sa.Column("version_source", sa.String(16), nullable=False),
    sa.Column("alert_time", UTC_TIME, nullable=False),
    sa.Column("received_at", UTC_TIME, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),  # False: older than the hub's active one
    sa.Index("ix_bo_firmware_events_device_id", "device_id", "alert_time"),
)

# What the endpoint refused (4xx): never the document itself, which an attacker controls.
bo_rejections = sa.Table(
    "bo_rejections",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("at", UTC_TIME, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("remote", sa.String(100), nullable=True),
    sa.Column("size", sa.Integer, nullable=False),  # bytes read (for 413: up to the cut-off)
    sa.Column("digest", sa.String(64), nullable=True),  # hex SHA-256 of the body; None for 413
    # Only once the signature verified: an unverified ResponseID is whatever the sender wrote.
    sa.Column("response_id", sa.String(80), nullable=True),
    sa.Index("ix_bo_rejections_at", "at"),
)

bo_pilots = sa.Table(
    "bo_pilots",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("target_version", sa.String(64), nullable=False),
    sa.Column("description", sa.String(1000), nullable=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
)

bo_pilot_members = sa.Table(
    "bo_pilot_members",
    metadata,
    sa.Column(
        "pilot",
        sa.String(100),
        sa.ForeignKey("bo_pilots.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("device_id", EUI64, primary_key=True),
)

# Where `chfw receiver sync` stopped reading each DSP's catch-up feed (its opaque cursor).
bo_feed_cursors = sa.Table(
    "bo_feed_cursors",
    metadata,
    sa.Column("source", sa.String(500), primary_key=True),  # the DSP's base URL
    sa.Column("cursor", sa.String(64), nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)

# The supplier's own estate: CHs it is Responsible Supplier of, imported from its records
# (`chfw receiver hubs import`), so that hubs that never sent an alert count too.
bo_estate = sa.Table(
    "bo_estate",
    metadata,
    sa.Column("device_id", EUI64, primary_key=True),
    sa.Column("label", sa.String(200), nullable=True),  # e.g. a site or a premises reference
    sa.Column("imported_at", UTC_TIME, nullable=False),
)

# Who changed the back office (pilots, the estate) from the CLI: the back office's own log,
# so that a supplier's database needs no DSP table.
bo_audit_log = audit_log_table(metadata, "bo_audit_log")

# Dashboard sessions signed out before their cookie expires: refused until expires_at.
revoked_sessions = revoked_sessions_table(metadata)
