"""The DSP's database schema, in SQLAlchemy Core. One place; its migrations mirror it.

Column types and the naming convention are shared with the supplier's back
office (:mod:`chfw.shared.db.types`); the tables are the DSP's alone.
"""

from __future__ import annotations

import sqlalchemy as sa

from chfw.shared.db.audit import audit_log_table
from chfw.shared.db.types import BIGID, EUI64, UTC_TIME, new_metadata, revoked_sessions_table

metadata = new_metadata()

service_users = sa.Table(
    "service_users",
    metadata,
    sa.Column("user_id", EUI64, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("roles", sa.String(100), nullable=False),  # comma-separated: IS,ES,GS,...
    sa.Column("duis_version", sa.String(8), nullable=False),
    sa.Column("endpoint_url", sa.String(2000), nullable=True),
    sa.Column("tls_ca_bundle", sa.String(2000), nullable=True),  # path; None = system CAs
    sa.Column("tls_client_cert", sa.String(2000), nullable=True),  # path to our client cert
    sa.Column("tls_client_key", sa.String(2000), nullable=True),
    sa.Column("inventory_token_hash", sa.String(200), nullable=True),  # for the read endpoint
    sa.Column("max_in_flight", sa.Integer, nullable=True),  # None: delivery_max_in_flight
    # A plain http endpoint is delivered to only when this is set (local testing).
    sa.Column("allow_insecure_http", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
    # Permanent refusals (400/413) in a row from the endpoint, since the run began; at
    # suspend_after_refusals delivery is suspended (alerts stay pending) until resumed.
    sa.Column("refusals_in_a_row", sa.Integer, nullable=False, server_default="0"),
    sa.Column("refusals_since", UTC_TIME, nullable=True),
    sa.Column("suspended_at", UTC_TIME, nullable=True),
    sa.Column("suspended_reason", sa.String(1000), nullable=True),
)

csps = sa.Table(
    "csps",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("token_id", sa.String(32), nullable=False, unique=True),  # public part of credential
    sa.Column("token_hash", sa.String(200), nullable=False),  # scrypt hash of the secret part
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTC_TIME, nullable=False),
    # The CSP regions it serves, comma-separated (north,central); None: every region.
    sa.Column("regions", sa.String(100), nullable=True),
    # The credential the last rotation replaced, still accepted until previous_valid_until.
    sa.Column("previous_token_id", sa.String(32), nullable=True),
    sa.Column("previous_token_hash", sa.String(200), nullable=True),
    sa.Column("previous_valid_until", UTC_TIME, nullable=True),
)

hubs = sa.Table(
    "hubs",
    metadata,
    sa.Column("device_id", EUI64, primary_key=True),
    sa.Column("csp_region", sa.String(16), nullable=False),  # north | central | south
    sa.Column("status", sa.String(32), nullable=False, server_default="commissioned"),
    # The Smart Metering Inventory's active firmware for this CH (None: never reported).
    sa.Column("active_firmware", sa.String(64), nullable=True),
    sa.Column("firmware_changed_at", UTC_TIME, nullable=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    # The newest success processed for this CH (chfw.core.domain.ordering.Report): the hub's
    # time (None if it gave none, or one later than its receipt), the command's sender and
    # counter (decimal).
    sa.Column("latest_report_at", UTC_TIME, nullable=True),
    sa.Column("latest_report_sender", EUI64, nullable=True),
    sa.Column("latest_report_counter", sa.String(20), nullable=True),
)

meter_points = sa.Table(
    "meter_points",
    metadata,
    sa.Column("identifier", sa.String(13), primary_key=True),  # MPAN (13) or MPRN (6-10)
    sa.Column("fuel", sa.String(16), nullable=False),  # electricity | gas
    sa.Column(
        "device_id", EUI64, sa.ForeignKey("hubs.device_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("import_supplier", EUI64, nullable=True),
    sa.Column("export_supplier", EUI64, nullable=True),
    sa.Column("gas_supplier", EUI64, nullable=True),
    sa.Index("ix_meter_points_device_id", "device_id"),
)

# Every outcome a CSP reported, in order of receipt. The unique key on
# (device_id, originator_counter, event) is the processed-outcome (idempotency) key.
firmware_history = sa.Table(
    "firmware_history",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("device_id", EUI64, nullable=False),
    sa.Column("originator_counter", sa.String(20), nullable=False),  # decimal 0..2^64-1
    sa.Column("event", sa.String(16), nullable=False),  # accepted | outcome
    sa.Column("source", sa.String(16), nullable=False),  # response | alert
    sa.Column("result", sa.String(32), nullable=False),  # ActivationResult value
    sa.Column("decision", sa.String(32), nullable=False),  # Decision value
    sa.Column("reported_version", sa.String(64), nullable=True),
    sa.Column("version_before", sa.String(64), nullable=True),
    sa.Column("version_after", sa.String(64), nullable=True),
    sa.Column("occurred_at", UTC_TIME, nullable=True),  # hub's execution/response time
    sa.Column("recorded_at", UTC_TIME, nullable=False),
    sa.Column("csp", sa.String(100), nullable=True),
    sa.Column("alerts_created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("note", sa.String(500), nullable=True),  # e.g. suppliers with no Service User
    # The command's sender (the response's recipient system title): counters are its own.
    # '' on rows recorded before it was kept (they match any sender).
    sa.Column("sender", EUI64, nullable=False, server_default=sa.text("''")),
    # SHA-256 of the outcome's content: a redelivery has the same, a conflict another.
    sa.Column("content_digest", sa.String(64), nullable=True),
    sa.UniqueConstraint(
        "device_id",
        "sender",
        "originator_counter",
        "event",
        name="uq_firmware_history_outcome_key",
    ),
    # The row's place in the Service Users' catch-up feed (chfw.dsp.store.feed): given in
    # commit order by the feed's sequencer, after the row is committed; None until then,
    # 0 for rows recorded before the feed existed (covered by the gains migration 0013 made).
    sa.Column("feed_seq", sa.BigInteger, nullable=True),
    sa.Index("ix_firmware_history_device_id", "device_id", "id"),
    sa.Index("ix_firmware_history_recorded_at", "recorded_at"),
    sa.Index("ix_firmware_history_feed_seq", "feed_seq"),
)

# A Service User became a Responsible Supplier (Import, Export or Gas Supplier) of a CH it
# was not one of: written by the estate import that did it, with the CH's firmware as it
# stood then (read under the hub's row lock). The feed shows the latest gain of a pair as
# ``reason: gained`` and the CH's changes after it. Never updated but for feed_seq.
supplier_gains = sa.Table(
    "supplier_gains",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("user_id", EUI64, nullable=False),
    sa.Column("device_id", EUI64, nullable=False),
    sa.Column("firmware_version", sa.String(64), nullable=True),
    sa.Column("firmware_changed_at", UTC_TIME, nullable=True),
    sa.Column("gained_at", UTC_TIME, nullable=False),
    # The CH's newest firmware_history id when gained (0: none): the changes after it are
    # the user's. Read under the hub's lock, which every outcome's processing holds too.
    sa.Column("history_id", sa.BigInteger, nullable=False),
    sa.Column("feed_seq", sa.BigInteger, nullable=True),  # as firmware_history.feed_seq
    sa.Index("ix_supplier_gains_user_id", "user_id", "device_id", "feed_seq"),
    sa.Index("ix_supplier_gains_feed_seq", "feed_seq"),
)

# Posts a CSP made that were not processed: malformed, unknown CH, unsigned ...
intake_rejections = sa.Table(
    "intake_rejections",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("received_at", UTC_TIME, nullable=False),
    sa.Column("csp", sa.String(100), nullable=True),
    sa.Column("device_id", EUI64, nullable=True),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("payload_hex", sa.Text, nullable=False),
    sa.Index("ix_intake_rejections_received_at", "received_at"),
)

# Outcomes for CHs not in the estate (yet): kept, with the post's bytes and CSP, until
# `chfw estate import` (or `chfw parked process`) adds the CH and processes them, in
# received order (id), deleting each in the transaction that processes it. Never expired.
# Unique on the outcome's identity: the same outcome posted again is not kept twice.
parked_outcomes = sa.Table(
    "parked_outcomes",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("device_id", EUI64, nullable=False),
    sa.Column("originator_counter", sa.String(20), nullable=False),  # decimal 0..2^64-1
    sa.Column("event", sa.String(16), nullable=False),  # accepted | outcome
    sa.Column("sender", EUI64, nullable=False),  # the CS06 command's sender (GBCS recipient)
    sa.Column("result", sa.String(32), nullable=False),  # ActivationResult value, for listing
    sa.Column("firmware_version", sa.String(64), nullable=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),  # the GBCS message as received
    sa.Column("csp", sa.String(100), nullable=True),
    sa.Column("received_at", UTC_TIME, nullable=False),
    sa.UniqueConstraint(
        "device_id",
        "sender",
        "originator_counter",
        "event",
        name="uq_parked_outcomes_identity",
    ),
)

# One row per alert per recipient. State machine:
#   pending --2xx--> delivered
#   pending --400 / horizon passed--> dead --operator replay--> pending
# A row is claimed by setting lease_until (and next_attempt_at to the same time, so rows
# in flight are outside the claim's due range); an expired lease makes it claimable again.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("response_id", sa.String(80), nullable=False, unique=True),
    sa.Column("user_id", EUI64, nullable=False),
    sa.Column("device_id", EUI64, nullable=False),
    sa.Column("alert_code", sa.String(8), nullable=False),  # N64 | N999
    sa.Column("duis_version", sa.String(8), nullable=False),
    sa.Column("firmware_version", sa.String(64), nullable=True),
    sa.Column("history_id", sa.BigInteger, nullable=True),
    sa.Column("document", sa.LargeBinary, nullable=False),  # signed DUIS Response
    sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | dead | parked
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("next_attempt_at", UTC_TIME, nullable=False),
    sa.Column("lease_until", UTC_TIME, nullable=True),
    sa.Column("delivered_at", UTC_TIME, nullable=True),
    sa.Column("last_error", sa.String(1000), nullable=True),
    # id last: the claim orders by (next_attempt_at, id), so an index scan can stop at LIMIT
    # instead of sorting every due row (a deep backlog shares few next_attempt_at values).
    sa.Index("ix_outbox_due", "state", "next_attempt_at", "id"),
    sa.Index("ix_outbox_order", "device_id", "user_id", "id"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
    sa.Column("attempted_at", UTC_TIME, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # delivered | retry | rejected | dead
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(1000), nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    sa.Index("ix_delivery_attempts_outbox_id", "outbox_id"),
)

# Delivered alerts moved out of the outbox after the retention period (`chfw outbox
# archive`), so the outbox holds only what is moving and the recent past: its indexes stay
# the size of the working set, and nothing else in it changes. Rows keep their outbox id.
outbox_archive = sa.Table(
    "outbox_archive",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("response_id", sa.String(80), nullable=False, unique=True),
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
    sa.Index("ix_outbox_archive_device_id", "device_id", "id"),
    sa.Index("ix_outbox_archive_delivered_at", "delivered_at"),
)

delivery_attempts_archive = sa.Table(
    "delivery_attempts_archive",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
    sa.Column("attempted_at", UTC_TIME, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(1000), nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    sa.Index("ix_delivery_attempts_archive_outbox_id", "outbox_id"),
)

# Attempts moved to the archive, by outcome: chfw_delivery_attempts_total counts every
# attempt ever made, so it must not fall when the archiver moves some out.
archived_attempt_totals = sa.Table(
    "archived_attempt_totals",
    metadata,
    sa.Column("outcome", sa.String(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

# Block allocation of never-repeating counters (e.g. ResponseID counters).
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("next_value", sa.BigInteger, nullable=False),
)

audit_log = audit_log_table(metadata, "audit_log")

# Dashboard sessions signed out before their cookie expires: refused until expires_at.
revoked_sessions = revoked_sessions_table(metadata)

# Firmware campaigns (issue 22; chfw.core.domain.campaign). A campaign's phases carry
# running counts (dispatched, succeeded, failed, held) kept in the transactions that
# change them, so the gates are read from a few rows, never counted over the hubs.
campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("campaign_id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("target_version", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # draft | running | paused | completed
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("error_threshold", sa.Float, nullable=False),  # percent failed
    sa.Column("min_sample", sa.Integer, nullable=False),
    sa.Column("success_threshold", sa.Float, nullable=False),  # percent succeeded
    sa.Column("unconfirmed_after", sa.Integer, nullable=False),  # seconds after dispatch
    sa.Column("auto_pauses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)

campaign_phases = sa.Table(
    "campaign_phases",
    metadata,
    sa.Column(
        "campaign_id",
        sa.BigInteger,
        sa.ForeignKey("campaigns.campaign_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("phase", sa.Integer, primary_key=True, autoincrement=False),  # 0 = first
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("size_spec", sa.String(16), nullable=False),  # as given: 500 | 10% | rest
    sa.Column("assigned", sa.Integer, nullable=False),  # hubs assigned, held ones included
    sa.Column("dispatched", sa.Integer, nullable=False, server_default="0"),
    sa.Column("succeeded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
)

campaign_hubs = sa.Table(
    "campaign_hubs",
    metadata,
    sa.Column(
        "campaign_id",
        sa.BigInteger,
        sa.ForeignKey("campaigns.campaign_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("device_id", EUI64, primary_key=True),
    sa.Column("phase", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # order handed out, within the campaign
    sa.Column("dispatched_at", UTC_TIME, nullable=True),
    sa.Column("dispatched_to", sa.String(100), nullable=True),  # the CSP
    sa.Column("outcome", sa.String(16), nullable=True),  # succeeded | failed
    sa.Column("outcome_at", UTC_TIME, nullable=True),
    sa.Column("held_at", UTC_TIME, nullable=True),
    sa.Column("held_by", sa.String(200), nullable=True),  # the Service User (or operator)
    sa.Column("held_reason", sa.String(500), nullable=True),
    sa.Index("ix_campaign_hubs_device_id", "device_id"),
    sa.Index("ix_campaign_hubs_work", "campaign_id", "dispatched_at", "phase", "position"),
)
