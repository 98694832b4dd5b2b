"""Alembic environment of the back office's chain (:mod:`chfw.supplier.migrate`)."""

from chfw.shared.db.alembic_env import run
from chfw.supplier.schema import metadata

run(metadata, default_version_table="alembic_version_backoffice")
