"""The DSP's migration chain (``chfw/dsp/store/migrations/``); ``chfw db upgrade`` runs it."""

from __future__ import annotations

from pathlib import Path

from chfw.shared.db.migrate import MigrationChain

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CHAIN = MigrationChain(MIGRATIONS, version_table="alembic_version")

alembic_config = CHAIN.alembic_config
head_revision = CHAIN.head_revision
upgrade = CHAIN.upgrade
current_revision = CHAIN.current_revision
