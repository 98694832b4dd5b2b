"""What each chain's ``env.py`` runs: migrate the given connection, or a URL, or emit SQL.

Driven by :class:`chfw.shared.db.migrate.MigrationChain` (no alembic.ini needed):
the connection to migrate comes in ``config.attributes["connection"]``; the
``alembic`` command line works too when ``sqlalchemy.url`` is set. SQLite gets
batch mode, since it cannot ALTER most things in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from chfw.shared.db.engine import create_engine_for


def run(metadata: sa.MetaData, default_version_table: str) -> None:
    """Run the migrations of the chain whose ``env.py`` calls this, against ``metadata``."""
    config = context.config
    version_table = config.get_main_option("version_table") or default_version_table

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            version_table=version_table,
        )
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():  # SQL for a DBA to apply (``alembic upgrade head --sql``)
        url = config.get_main_option("sqlalchemy.url")
        context.configure(
            url=url, target_metadata=metadata, literal_binds=True, version_table=version_table
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and sqlalchemy.url is not set")
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            migrate(conn)
    finally:
        engine.dispose()
