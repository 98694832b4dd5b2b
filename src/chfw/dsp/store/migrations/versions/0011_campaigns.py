"""Firmware campaigns (issue 22) and the CSP regions a CSP serves.

- ``campaigns``, ``campaign_phases`` (with running counts), ``campaign_hubs``
  (each hub's phase, dispatch, outcome and hold): chfw.dsp.store.campaigns.
- ``csps.regions``: the CSP regions a CSP serves (None: every region, as before).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("csps") as batch:
        batch.add_column(sa.Column("regions", sa.String(100), nullable=True))
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", BIGID, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("target_version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("error_threshold", sa.Float(), nullable=False),
        sa.Column("min_sample", sa.Integer(), nullable=False),
        sa.Column("success_threshold", sa.Float(), nullable=False),
        sa.Column("unconfirmed_after", sa.Integer(), nullable=False),
        sa.Column("auto_pauses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "campaign_phases",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("label", sa.String(40), nullable=False),
        sa.Column("size_spec", sa.String(16), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.Column("dispatched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("succeeded", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.campaign_id"],
            name="fk_campaign_phases_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "phase", name="pk_campaign_phases"),
    )
    op.create_table(
        "campaign_hubs",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dispatched_at", UTC_TIME, nullable=True),
        sa.Column("dispatched_to", sa.String(100), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("outcome_at", UTC_TIME, nullable=True),
        sa.Column("held_at", UTC_TIME, nullable=True),
        sa.Column("held_by", sa.String(200), nullable=True),
        sa.Column("held_reason", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.campaign_id"],
            name="fk_campaign_hubs_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "device_id", name="pk_campaign_hubs"),
    )
    op.create_index("ix_campaign_hubs_device_id", "campaign_hubs", ["device_id"])
    op.create_index(
        "ix_campaign_hubs_work",
        "campaign_hubs",
        ["campaign_id", "dispatched_at", "phase", "position"],
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_hubs_work", table_name="campaign_hubs")
    op.drop_index("ix_campaign_hubs_device_id", table_name="campaign_hubs")
    op.drop_table("campaign_hubs")
    op.drop_table("campaign_phases")
    op.drop_table("campaigns")
    with op.batch_alter_table("csps") as batch:
        batch.drop_column("regions")
