"""One order of events per hub, and outcome identity with the command's sender.

- ``hubs.latest_report_at|sender|counter``: where the newest success processed for
  the hub stands (the hub's clamped time, if it gave one; the command's sender and
  counter), so a late answer or a clock that lies cannot roll it back
  (chfw.core.domain.ordering).
- ``firmware_history.sender`` (the GBCS response's recipient system title: the
  command's sender, whose counter the outcome carries) joins the outcome's identity,
  and ``content_digest`` tells a CSP's redelivery (same content: duplicate) from a
  conflicting message (same identity, other content). Rows recorded before this
  revision have sender '' and no digest: they match any sender, as duplicates.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)


def upgrade() -> None:
    with op.batch_alter_table("hubs") as batch:
        batch.add_column(sa.Column("latest_report_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("latest_report_sender", EUI64, nullable=True))
        batch.add_column(sa.Column("latest_report_counter", sa.String(20), nullable=True))
    with op.batch_alter_table("firmware_history") as batch:
        batch.add_column(sa.Column("sender", EUI64, nullable=False, server_default=sa.text("''")))
        batch.add_column(sa.Column("content_digest", sa.String(64), nullable=True))
        batch.drop_constraint("uq_firmware_history_outcome_key", type_="unique")
        batch.create_unique_constraint(
            "uq_firmware_history_outcome_key",
            ["device_id", "sender", "originator_counter", "event"],
        )


def downgrade() -> None:
    with op.batch_alter_table("firmware_history") as batch:
        batch.drop_constraint("uq_firmware_history_outcome_key", type_="unique")
        batch.create_unique_constraint(
            "uq_firmware_history_outcome_key", ["device_id", "originator_counter", "event"]
        )
        batch.drop_column("content_digest")
        batch.drop_column("sender")
    with op.batch_alter_table("hubs") as batch:
        batch.drop_column("latest_report_counter")
        batch.drop_column("latest_report_sender")
        batch.drop_column("latest_report_at")
