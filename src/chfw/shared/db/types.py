"""Column types and the naming convention both products' schemas use.

Portable across SQLite (embedded default) and PostgreSQL: identifiers are
stored as upper-case hex text (Device/User IDs 16 chars, firmware versions up
to 64 chars), times as timezone-aware UTC, documents as bytes.
"""

from __future__ import annotations

import sqlalchemy as sa

UTC_TIME = sa.DateTime(timezone=True)
EUI64 = sa.String(16)  # upper-case hex, no separators
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite rowid alias needs INTEGER

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> sa.MetaData:
    """A product's own metadata, with the constraint names its migrations spell out."""
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


def revoked_sessions_table(metadata: sa.MetaData) -> sa.Table:
    """Dashboard sessions signed out before their cookie expires: refused until ``expires_at``.

    Each product's dashboard keeps them in its own database
    (:class:`chfw.shared.web.sessions.DatabaseRevocations`).
    """
    return sa.Table(
        "revoked_sessions",
        metadata,
        sa.Column("session_id", sa.String(32), primary_key=True),  # random, from the cookie
        sa.Column("expires_at", UTC_TIME, nullable=False, index=True),
    )
