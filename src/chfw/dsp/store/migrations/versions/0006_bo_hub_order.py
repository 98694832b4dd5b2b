"""Once the back office's alert order (``bo_hubs.latest_counter``); now empty.

Until issue 21 the back office's tables were on the DSP's chain and this revision
added ``bo_hubs.latest_counter``. The back office has its own chain now
(``chfw/supplier/migrations``, revision b0001), which adds the column to a
``bo_hubs`` made before this revision. New DSP databases have no ``bo_hubs``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: see the module docstring."""


def downgrade() -> None:
    """Nothing: the back office's chain owns its tables."""
