"""The back office's migration chain (``chfw/supplier/migrations/``), apart from the DSP's.

``chfw receiver serve`` runs it on start; ``chfw receiver db upgrade`` runs it on
its own. Its version table is ``alembic_version_backoffice``, so a database that
also holds a DSP (a test set-up, or one made before the chains were split) keeps
both versions side by side.
"""

from __future__ import annotations

from pathlib import Path

from chfw.shared.db.migrate import MigrationChain

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CHAIN = MigrationChain(MIGRATIONS, version_table="alembic_version_backoffice")

head_revision = CHAIN.head_revision
upgrade = CHAIN.upgrade
current_revision = CHAIN.current_revision
