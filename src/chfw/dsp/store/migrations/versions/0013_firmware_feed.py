"""The Service Users' catch-up feed (issue 22 item 5): feed positions and supplier gains.

- ``firmware_history.feed_seq``: the row's place in the feed, given after commit by
  the feed's sequencer (chfw.dsp.store.feed). Rows already recorded get 0: they are
  before the feed began, and the gains below stand for them.
- ``supplier_gains``: a Service User became a Responsible Supplier of a CH. Every pair
  that holds now is written as gained, with the CH's current firmware, so a feed read
  from the beginning names every CH a user has.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)


def upgrade() -> None:
    with op.batch_alter_table("firmware_history") as batch:
        batch.add_column(sa.Column("feed_seq", sa.BigInteger(), nullable=True))
        batch.create_index("ix_firmware_history_feed_seq", ["feed_seq"])
    op.execute("UPDATE firmware_history SET feed_seq = 0")
    gains = op.create_table(
        "supplier_gains",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("user_id", EUI64, nullable=False),
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("firmware_changed_at", UTC_TIME, nullable=True),
        sa.Column("gained_at", UTC_TIME, nullable=False),
        sa.Column("history_id", sa.BigInteger(), nullable=False),
        sa.Column("feed_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_supplier_gains"),
    )
    op.create_index(
        "ix_supplier_gains_user_id", "supplier_gains", ["user_id", "device_id", "feed_seq"]
    )
    op.create_index("ix_supplier_gains_feed_seq", "supplier_gains", ["feed_seq"])
    assert gains is not None
    _backfill(gains)


def _backfill(gains: sa.Table) -> None:
    """Every (Service User, CH) pair that holds now, as gained now at the CH's version."""
    points = sa.table(
        "meter_points",
        sa.column("device_id"),
        sa.column("import_supplier"),
        sa.column("export_supplier"),
        sa.column("gas_supplier"),
    )
    hubs = sa.table(
        "hubs",
        sa.column("device_id"),
        sa.column("active_firmware"),
        sa.column("firmware_changed_at", UTC_TIME),
    )
    pairs = sa.union(
        *(
            sa.select(column.label("user_id"), points.c.device_id).where(column.is_not(None))
            for column in (
                points.c.import_supplier,
                points.c.export_supplier,
                points.c.gas_supplier,
            )
        )
    ).subquery()
    history = sa.table("firmware_history", sa.column("id"), sa.column("device_id"))
    newest = (
        sa.select(sa.func.coalesce(sa.func.max(history.c.id), 0))
        .where(history.c.device_id == pairs.c.device_id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            pairs.c.user_id,
            pairs.c.device_id,
            hubs.c.active_firmware,
            hubs.c.firmware_changed_at,
            sa.literal(datetime.now(UTC), UTC_TIME),
            newest,
        )
        .select_from(pairs.join(hubs, hubs.c.device_id == pairs.c.device_id))
        .order_by(pairs.c.device_id, pairs.c.user_id)
    )
    op.execute(
        gains.insert().from_select(
            [
                "user_id",
                "device_id",
                "firmware_version",
                "firmware_changed_at",
                "gained_at",
                "history_id",
            ],
            query,
        )
    )


def downgrade() -> None:
    op.drop_index("ix_supplier_gains_feed_seq", table_name="supplier_gains")
    op.drop_index("ix_supplier_gains_user_id", table_name="supplier_gains")
    op.drop_table("supplier_gains")
    with op.batch_alter_table("firmware_history") as batch:
        batch.drop_index("ix_firmware_history_feed_seq")
        batch.drop_column("feed_seq")
