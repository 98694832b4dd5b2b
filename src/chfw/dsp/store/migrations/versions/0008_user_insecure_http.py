"""Service Users: plain http endpoints only for users marked ``allow_insecure_http``.

Delivery now refuses to post an alert over plain http unless the user is
marked (``chfw users set-endpoint USER URL --allow-insecure-http``, for local
testing). Existing users are not marked: an http endpoint registered before
this revision stops receiving (its alerts retry with the reason in
``last_error``) until it is changed to https or marked on purpose.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.add_column(
            sa.Column(
                "allow_insecure_http", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.drop_column("allow_insecure_http")
