"""Signed documents move out of the outbox row into ``outbox_documents``.

A delivered alert's outbox row is written three times: enqueued, leased by a
claim, settled. With the ~1.6 KB signed document inline, the lease and the
settle rewrote the document's bytes each time for a change of a few bytes:
SQLite rewrites the row's page (two rows a page), PostgreSQL copies the whole
tuple (documents of this size are not TOASTed). Measured on SQLite, a claim
and settle of 40,000 rows took 40-50 µs per alert with the document inline and
17-19 µs without; on the whole wave it was the largest part of the time the
delivery worker held the write lock. The document is immutable, so it lives in
its own table, keyed by the outbox id.

On SQLite the column is dropped in place (``ALTER TABLE ... DROP COLUMN``,
SQLite 3.35 or later): batch mode would recreate the outbox table, and
dropping the old table would cascade into the new documents table.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SQLITE_DROP_COLUMN = (3, 35, 0)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite and sqlite3.sqlite_version_info < _SQLITE_DROP_COLUMN:
        raise RuntimeError(
            f"chfw needs SQLite 3.35 or later to migrate its outbox; this Python links "
            f"SQLite {sqlite3.sqlite_version}: use a newer Python build or PostgreSQL"
        )
    op.create_table(
        "outbox_documents",
        sa.Column("outbox_id", BIGID, nullable=False, autoincrement=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("outbox_id"),
    )
    op.execute("INSERT INTO outbox_documents (outbox_id, document) SELECT id, document FROM outbox")
    if sqlite:
        op.execute("ALTER TABLE outbox DROP COLUMN document")
    else:
        op.drop_column("outbox", "document")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Added nullable (SQLite cannot add a NOT NULL column without a default), filled,
    # then made NOT NULL where the database can do that in place.
    if sqlite:
        op.execute("ALTER TABLE outbox ADD COLUMN document BLOB")
    else:
        op.add_column("outbox", sa.Column("document", sa.LargeBinary, nullable=True))
    op.execute(
        "UPDATE outbox SET document = "
        "(SELECT d.document FROM outbox_documents d WHERE d.outbox_id = outbox.id)"
    )
    if not sqlite:
        op.alter_column("outbox", "document", existing_type=sa.LargeBinary, nullable=False)
    op.drop_table("outbox_documents")
