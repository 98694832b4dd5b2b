"""Run a product's schema migrations from the package, without an alembic.ini on disk.

Each product has its own chain: the DSP's (:mod:`chfw.dsp.store.migrate`,
version table ``alembic_version``) and the supplier's back office
(:mod:`chfw.supplier.migrate`, version table ``alembic_version_backoffice``), so
one database may hold both and each is upgraded on its own. The test fixtures
migrate the same way, so every test database is built as a deployment's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from chfw.shared.db.engine import create_engine_for


@dataclass(frozen=True, slots=True)
class MigrationChain:
    """One product's migrations: the folder holding ``env.py`` and its version table."""

    folder: Path
    version_table: str

    def alembic_config(self, url: str | None = None) -> Config:
        """An Alembic configuration for this chain (``env.py`` reads ``version_table``)."""
        config = Config()
        config.set_main_option("script_location", str(self.folder))
        config.set_main_option("version_table", self.version_table)
        if url is not None:
            # '%' is ConfigParser interpolation syntax; URLs may contain it (escaped passwords).
            config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def head_revision(self) -> str:
        """The newest revision this version of chfw knows."""
        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
        if head is None:  # pragma: no cover - every chain ships its first revision
            raise RuntimeError(f"no migrations found in {self.folder}")
        return head

    def upgrade(self, url_or_engine: str | Engine, revision: str = "head") -> str | None:
        """Bring the database up to ``revision``; a no-op when it is already there.

        Returns the revision the database is at afterwards.
        """
        engine = (
            create_engine_for(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        try:
            config = self.alembic_config()
            with engine.connect() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                conn.commit()
            return self.current_revision(engine)
        finally:
            if isinstance(url_or_engine, str):
                engine.dispose()

    def current_revision(self, engine: Engine) -> str | None:
        """The revision the database is at; None when this chain never ran on it."""
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            revision = context.get_current_revision()
            conn.rollback()
        return revision
