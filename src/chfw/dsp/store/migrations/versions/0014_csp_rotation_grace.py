"""CSP credential rotation with a grace period: the replaced credential stays valid a while.

- ``csps.previous_token_id``/``previous_token_hash``: the credential a rotation replaced;
- ``csps.previous_valid_until``: until when it is still accepted
  (``csp_rotation_grace_seconds`` after the rotation, 10 minutes by default).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("csps") as batch:
        batch.add_column(sa.Column("previous_token_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("previous_token_hash", sa.String(200), nullable=True))
        batch.add_column(sa.Column("previous_valid_until", UTC_TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("csps") as batch:
        batch.drop_column("previous_valid_until")
        batch.drop_column("previous_token_hash")
        batch.drop_column("previous_token_id")
