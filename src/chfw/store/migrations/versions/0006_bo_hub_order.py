"""The back office orders alerts for one CH by alert time, then ResponseID counter.

Two alerts for one CH stamped with the same ResponseDateTime used to be
ordered by arrival, so a late copy of the older one could move the CH back.
``bo_hubs.latest_counter`` holds the counter of the alert that set the CH's
state, as 20-digit zero-padded text (counters reach 2^64-1, beyond BIGINT;
equal-length digit strings compare as their numbers), or ``''`` when its
ResponseID has no counter. Existing rows take it from ``latest_response_id``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

_COUNTER = re.compile(r":(0|[1-9][0-9]{0,19})$")
_BATCH = 5000


def _padded(response_id: str) -> str:
    match = _COUNTER.search(response_id)
    if match is None or int(match[1]) >= 1 << 64:
        return ""
    return match[1].zfill(20)


def upgrade() -> None:
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
    for start in range(0, len(values), _BATCH):
        conn.execute(update, values[start : start + _BATCH])


def downgrade() -> None:
    with op.batch_alter_table("bo_hubs") as batch:
        batch.drop_column("latest_counter")
