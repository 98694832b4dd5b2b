"""The supplier's own estate (bo_estate) and the back office's audit log (bo_audit_log).

``chfw receiver hubs import`` fills ``bo_estate`` with the CHs the supplier is
Responsible Supplier of, so that readiness counts hubs that never sent an
alert (``unknown``). Pilot and estate changes are audited in ``bo_audit_log``:
until now they went to the DSP's ``audit_log``, absent from a supplier's own
database.

Revision ID: b0003
Revises: b0002
Create Date: 2026-12-07

Written out by hand to mirror chfw.supplier.schema; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b0003"
down_revision: str | None = "b0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bo_estate",
        sa.Column("device_id", EUI64, nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("imported_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_bo_estate"),
    )
    op.create_table(
        "bo_audit_log",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bo_audit_log"),
    )


def downgrade() -> None:
    op.drop_table("bo_audit_log")
    op.drop_table("bo_estate")
