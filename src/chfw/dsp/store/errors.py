"""Driver errors translated at the boundary into StoreError, with what an operator can do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from chfw.exceptions import StoreError


@contextmanager
def translated() -> Iterator[None]:
    """``with translated(): ...`` raises StoreError instead of SQLAlchemy/driver errors."""
    try:
        yield
    except exc.OperationalError as error:
        text = str(error.orig)
        if "no such table" in text or "does not exist" in text:
            raise StoreError(
                f"the database has no chfw schema ({text}); run `chfw db upgrade` first"
            ) from None
        if "resolve host" in text or "translate host name" in text:
            raise StoreError(
                f"database error: {text}; check the host in database_url (a password "
                "containing '@', ':' or '/' must be percent-encoded: '@' -> %40)"
            ) from None
        if "locked" in text:
            raise StoreError(
                f"the database is busy ({text}); another chfw process holds it, try again"
            ) from None
        raise StoreError(f"database error: {text}") from None
    except exc.ProgrammingError as error:
        raise StoreError(
            f"database error: {error.orig}; is the schema up to date (`chfw db upgrade`)?"
        ) from None
    except exc.SQLAlchemyError as error:
        raise StoreError(f"database error: {error}") from None
