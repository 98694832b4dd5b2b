"""Once the supplier's back office; now empty (the back office has its own chain).

Until issue 21 this revision created the ``bo_*`` tables on the DSP's chain. They
are the supplier's, so they moved to the back office's own chain
(``chfw/supplier/migrations``, revision b0001), which adopts the tables this
revision made in databases that ran it. New DSP databases get none of them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: see the module docstring."""


def downgrade() -> None:
    """Nothing: the back office's chain owns its tables."""
