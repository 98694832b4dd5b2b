"""Alembic environment of the DSP's chain (:mod:`chfw.dsp.store.migrate`)."""

from chfw.dsp.store.schema import metadata
from chfw.shared.db.alembic_env import run

run(metadata, default_version_table="alembic_version")
