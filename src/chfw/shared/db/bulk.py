"""Bulk writes as compiled driver SQL, for the intake's and the receiver's hot paths.

SQLAlchemy's executemany turns every row dict into bound parameters through
per-value type processing; for a 500-message batch that was a fifth of the
intake's CPU. Here the statement text is compiled once per table and column
list, rows go to the driver as tuples, and values that need converting
(times) are converted by the caller with :func:`driver_value` -- once per batch
when they are the same for every row.

On PostgreSQL the rows of a batch go as one array per column, in one
statement (``INSERT ... SELECT * FROM unnest(...)``, ``UPDATE ... FROM``
:class:`ArrayRows`, lookups by ``= ANY``), sent in binary (``store.engine``):
an executemany costs PostgreSQL a statement per row, and psycopg re-parses
long statement texts on every execution.

Only SQLite (qmark) and psycopg (format) parameter styles are supported; both
are what chfw runs on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase

from chfw.shared.db.sql import IN_LIST_MAX, to_db_opt, unbounded

Row = tuple[Any, ...]


def driver_value(conn: Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver wants it for ``column`` (e.g. a SQLite time as text).

    Exactly what SQLAlchemy's own statements store, so reads through
    SQLAlchemy see no difference.
    """
    return None if value is None else _driver(conn.dialect, column.type, value)


def driver_time(conn: Connection, column: sa.Column[Any], moment: datetime | None) -> Any:
    """A time for ``column`` as the driver wants it: stored as UTC (:func:`to_db`), then
    converted by :func:`driver_value`; None stays None."""
    return driver_value(conn, column, to_db_opt(moment))


def insert_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Row]
) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order, driver values): one executemany, or
    on PostgreSQL one statement with an array per column (:func:`_insert_unnest_sql`)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        sql = _insert_unnest_sql(conn.dialect, table, tuple(columns), ())
        for chunk in _array_chunks(rows):
            run_sql(conn, sql, chunk)
        return
    run_sql(conn, _insert_sql(conn.dialect, table, tuple(columns), 1), list(rows), many=True)


def insert_rows_returning(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    returning: Sequence[str],
) -> list[Row]:
    """INSERT ``rows`` with multi-row VALUES statements; the ``returning`` columns of each.

    The rows come back in no promised order (neither SQLite nor PostgreSQL
    guarantees one), so return a column that identifies the row, such as a
    unique key, and match on it. On PostgreSQL the rows go as one array per
    column (:func:`_insert_unnest_sql`), whatever their number.
    """
    if not rows:
        return []
    names = tuple(columns)
    if conn.dialect.name == "postgresql":  # one statement, one array per column
        sql = _insert_unnest_sql(conn.dialect, table, names, tuple(returning))
        return [tuple(row) for chunk in _array_chunks(rows) for row in run_sql(conn, sql, chunk)]
    per_statement = _rows_per_statement(conn.dialect, len(names))
    out: list[Row] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(conn.dialect, table, names, len(chunk), tuple(returning))
        params = tuple(value for row in chunk for value in row)
        out.extend(tuple(row) for row in run_sql(conn, sql, params))
    return out


def execute_many(
    conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run a SQLAlchemy statement with bound parameters for each row, through the driver.

    ``rows`` map the statement's ``bindparam`` names to driver values; parameters
    the statement fixes itself (``state="delivered"``, ``attempts + 1``) keep
    their values. The statement is compiled once per dialect.
    """
    if rows:
        run_sql(conn, *_many(conn.dialect, statement, rows), many=True)


def _many(
    dialect: Dialect, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, list[Any]]:
    sql, names, fixed = _compiled(dialect, statement)
    if names is None:  # named style (psycopg): dicts
        return sql, [{**fixed, **row} for row in rows]
    return sql, [tuple(row[n] if n in row else fixed[n] for n in names) for row in rows]


def run_sql(conn: Connection, sql: str, params: Any, *, many: bool = False) -> list[Row]:
    """Run compiled driver SQL in ``conn``'s transaction (``exec_driver_sql``); the rows read.

    The one way every function here reaches the database, so SQLAlchemy's
    events, logging and error translation see every statement. Values go in
    and come out as the driver has them (:func:`driver_value`,
    :func:`result_processor`). Until issue 21 the receiver ran its statements on
    the driver's own cursor instead, beside this path; measured in one sitting
    with ``bench/bench_receiver.py``, going through SQLAlchemy costs the
    receiver ~4 % CPU per alert over HTTP (420 -> 437 µs), docs/performance.md.
    """
    result = conn.exec_driver_sql(sql, list(params) if many else params)
    return [tuple(row) for row in result] if result.returns_rows else []


@lru_cache(maxsize=64)
def result_processor(
    dialect: Dialect, type_: sa.types.TypeEngine[Any]
) -> Callable[[Any], Any] | None:
    """What turns a driver value of ``type_`` into SQLAlchemy's (e.g. SQLite's text time into
    a datetime); None when the driver's value is already it."""
    return type_.dialect_impl(dialect).result_processor(dialect, None)


@lru_cache(maxsize=512)
def lookup_sql(
    dialect: Dialect, table: sa.Table, columns: tuple[str, ...], key: str, count: int, lock: bool
) -> str:
    """``SELECT columns FROM table WHERE key IN (count values)`` as driver SQL; on PostgreSQL
    ``key = ANY(array)`` (one text for every count, see ``store._sql.among``), and with
    ``FOR UPDATE`` when ``lock``."""
    quote = dialect.identifier_preparer.quote
    _known_columns(table, (*columns, key))
    mark = _placeholder(dialect)
    if dialect.name == "postgresql":
        where = f"= ANY({mark})"
    else:
        where = f"IN ({', '.join([mark] * count)})"
    # Identifiers come from chfw's own table metadata, quoted; values are all bound.
    sql = (
        f"SELECT {', '.join(quote(name) for name in columns)} "  # noqa: S608
        f"FROM {dialect.identifier_preparer.format_table(table)} WHERE {quote(key)} {where}"
    )
    return sql + " FOR UPDATE" if lock and dialect.name == "postgresql" else sql


def lookup(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    key: str,
    values: Sequence[Any],
    *,
    lock: bool = False,
) -> list[Row]:
    """Rows of ``table`` whose ``key`` is among ``values`` (at most ``IN_LIST_MAX``), straight
    through the driver (:func:`run_sql`): driver values, converted by the caller."""
    if not values:
        return []
    if len(values) > IN_LIST_MAX:
        raise ValueError(f"{len(values)} values to look up; at most {IN_LIST_MAX} at a time")
    postgres = conn.dialect.name == "postgresql"
    sql = lookup_sql(conn.dialect, table, tuple(columns), key, 1 if postgres else len(values), lock)
    return run_sql(conn, sql, (list(values),) if postgres else tuple(values))


class ArrayRows:
    """PostgreSQL: many rows as one array per column, a FROM source for set-based statements.

    ``UPDATE t SET ... FROM <rows> WHERE t.key = rows.key`` is one statement
    for any number of rows, where an executemany runs one per row: for the
    worker's settles that was ~60 -> ~45 µs of server and ~28 -> ~13 µs of
    client CPU per row. Use :attr:`c` for the columns in the statement and
    :meth:`params` for its parameters.
    """

    def __init__(self, name: str, columns: Mapping[str, sa.types.TypeEngine[Any]]) -> None:
        self.name = name
        self.columns = tuple(columns)
        self.source = sa.select(
            *(
                sa.func.unnest(
                    sa.bindparam(f"{name}_{column}", type_=postgresql.ARRAY(type_))
                ).label(column)
                for column, type_ in columns.items()
            )
        ).subquery(name)

    @property
    def c(self) -> Any:
        return self.source.c

    def params(self, rows: Sequence[Row]) -> dict[str, list[Any]]:
        """Parameters for ``rows`` (tuples in the order the columns were given)."""
        arrays: list[list[Any]] = [[] for _ in self.columns]
        for row in rows:
            for array, value in zip(arrays, row, strict=True):
                array.append(value)
        return {
            f"{self.name}_{column}": array
            for column, array in zip(self.columns, arrays, strict=True)
        }


@lru_cache(maxsize=256)
def _bind_processor(
    dialect: Dialect, type_: sa.types.TypeEngine[Any]
) -> Callable[[Any], Any] | None:
    return type_.dialect_impl(dialect).bind_processor(dialect)


@lru_cache(maxsize=64)
def _compiled(
    dialect: Dialect, statement: UpdateBase
) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    compiled = statement.compile(dialect=dialect)
    fixed = {
        name: _driver(dialect, bind.type, bind.effective_value)
        for name, bind in compiled.binds.items()
        if not bind.required
    }
    names = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    if names is None and dialect.paramstyle not in ("pyformat", "named"):
        raise NotImplementedError(f"execute_many does not support {dialect.paramstyle}")
    return compiled.string, names, fixed


def _driver(dialect: Dialect, type_: sa.types.TypeEngine[Any], value: Any) -> Any:
    process = _bind_processor(dialect, type_)
    return value if process is None else process(value)


def _placeholder(dialect: Dialect) -> str:
    if dialect.paramstyle == "qmark":
        return "?"
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(
        f"bulk writes support the qmark and format parameter styles, not {dialect.paramstyle} "
        f"({dialect.name}+{dialect.driver})"
    )


@lru_cache(maxsize=256)
def _insert_sql(
    dialect: Dialect,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: int,
    returning: tuple[str, ...] = (),
) -> str:
    mark = _placeholder(dialect)
    one_row = "(" + ", ".join([mark] * len(columns)) + ")"
    return _insert(dialect, table, columns, "VALUES " + ", ".join([one_row] * rows), returning)


@lru_cache(maxsize=64)
def _insert_unnest_sql(
    dialect: Dialect, table: sa.Table, columns: tuple[str, ...], returning: tuple[str, ...]
) -> str:
    """PostgreSQL: INSERT ... SELECT * FROM unnest(one array per column) RETURNING ...

    The same text for any number of rows, so psycopg parses it once and
    PostgreSQL can prepare it; a multi-row VALUES of 500 rows x 14 columns was
    re-parsed placeholder by placeholder on every batch, and an executemany
    runs a statement per row. With the arrays sent binary, per row: the
    history insert ~60-90 -> ~9 µs of client and ~25-35 -> ~20 µs of server
    CPU; the outbox insert (executemany) ~35 -> ~14 and ~51 -> ~37 µs.
    """
    mark = _placeholder(dialect)
    arrays = ", ".join(
        f"{mark}::{unbounded(table.c[name].type).compile(dialect=dialect)}[]"
        for name in columns
        if name in table.c  # an unknown name is refused by _insert
    )
    # Types come from chfw's own table metadata; values are all bound.
    return _insert(dialect, table, columns, f"SELECT * FROM unnest({arrays})", returning)  # noqa: S608


def _insert(
    dialect: Dialect,
    table: sa.Table,
    columns: tuple[str, ...],
    source: str,
    returning: tuple[str, ...],
) -> str:
    """INSERT INTO table (columns) <source> [RETURNING ...], every name checked and quoted."""
    quote = dialect.identifier_preparer.quote
    _known_columns(table, columns + returning)
    # Identifiers and types come from chfw's own table metadata, quoted; values are all bound.
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in columns)}) {source}"
    )
    if returning:
        sql += " RETURNING " + ", ".join(quote(name) for name in returning)
    return sql


def _known_columns(table: sa.Table, names: Iterable[str]) -> None:
    """Refuse a name that is not a column of ``table``: names go into SQL text."""
    for name in names:
        if name not in table.c:
            raise ValueError(f"table {table.name} has no column {name!r}")


_ARRAY_ROWS = 5_000  # rows per statement when they go as arrays: bounded memory per statement


def _array_chunks(rows: Sequence[Row]) -> Iterator[tuple[list[Any], ...]]:
    """``rows`` as one list per column (sent as binary arrays, see ``store.engine``),
    at most :data:`_ARRAY_ROWS` rows at a time."""
    for start in range(0, len(rows), _ARRAY_ROWS):
        yield tuple(list(column) for column in zip(*rows[start : start + _ARRAY_ROWS], strict=True))


# Bound parameters one statement may carry: SQLite before 3.32 allowed 999,
# later versions 32,766; PostgreSQL's protocol allows 65,535.
def _rows_per_statement(dialect: Dialect, columns: int) -> int:
    if dialect.name == "sqlite":
        limit = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
    else:
        limit = 65_535
    return max(1, min(500, limit // max(1, columns)))
