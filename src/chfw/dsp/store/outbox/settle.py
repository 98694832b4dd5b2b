"""Settling claimed rows from delivery workers' attempt results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.dsp.store.outbox.claim import _still_pending
from chfw.dsp.store.outbox.values import AttemptResult, _clip
from chfw.dsp.store.schema import delivery_attempts, outbox
from chfw.shared.db.bulk import ArrayRows, driver_time, execute_many, insert_rows
from chfw.shared.db.types import UTC_TIME

_SETTLE_DELIVERED = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"), _still_pending(outbox))
    .values(
        state="delivered",
        attempts=outbox.c.attempts + 1,
        delivered_at=sa.bindparam("b_at"),
        next_attempt_at=sa.bindparam("b_at"),
        lease_until=None,
        last_error=None,
    )
)
_SETTLED = ArrayRows("settled", {"id": sa.BigInteger(), "at": UTC_TIME})
_SETTLE_DELIVERED_SET = (  # PostgreSQL: every delivered row of a batch in one statement
    sa.update(outbox)
    .where(outbox.c.id == _SETTLED.c.id, _still_pending(outbox))
    .values(
        state="delivered",
        attempts=outbox.c.attempts + 1,
        delivered_at=_SETTLED.c.at,
        next_attempt_at=_SETTLED.c.at,
        lease_until=None,
        last_error=None,
    )
)
_SETTLE_RETRY = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"), _still_pending(outbox))
    .values(
        attempts=outbox.c.attempts + 1,
        next_attempt_at=sa.bindparam("b_next"),
        lease_until=None,
        last_error=sa.bindparam("b_error"),
    )
)
_head = outbox.alias("head")
# A retried row's later rows (same CH and user) cannot go before it: move them out of
# the due range until then, so claims do not rescan a growing set of blocked rows.
_HOLD_FOLLOWERS = (
    sa.update(outbox)
    .where(
        _still_pending(outbox),
        outbox.c.device_id
        == sa.select(_head.c.device_id).where(_head.c.id == sa.bindparam("b_id")).scalar_subquery(),
        outbox.c.user_id
        == sa.select(_head.c.user_id).where(_head.c.id == sa.bindparam("b_id")).scalar_subquery(),
        outbox.c.id > sa.bindparam("b_id"),
        outbox.c.next_attempt_at < sa.bindparam("b_next"),
    )
    .values(next_attempt_at=sa.bindparam("b_next"))
)
_SETTLE_DEAD = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"), _still_pending(outbox))
    .values(
        state="dead",
        attempts=outbox.c.attempts + 1,
        next_attempt_at=sa.bindparam("b_at"),
        lease_until=None,
        last_error=sa.bindparam("b_error"),
    )
)


_STORE_DOCUMENT = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"))
    .values(document=sa.bindparam("b_document"))
)


def record_results(conn: Connection, results: Sequence[AttemptResult]) -> None:
    """Settle rows from attempt results, in one executemany per outcome, and log every attempt.

    A result that carries a re-signed ``document`` replaces the stored one
    whatever the outcome: it is what was sent, and what a retry or a replay
    sends again.

    Only pending rows change, so a late result cannot undo another worker's
    delivery or an operator's decision. Every attempt is recorded regardless.
    A delivered or dead row's ``next_attempt_at`` becomes its last attempt's time
    (the claim had moved it to the lease's end).
    """
    if not results:
        return
    delivered: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    attempts: list[tuple[Any, ...]] = []
    documents: list[dict[str, Any]] = []
    time_column = delivery_attempts.c.attempted_at
    for result in results:
        if result.document is not None:
            documents.append({"b_id": result.outbox_id, "b_document": result.document})
        at = driver_time(conn, time_column, result.attempted_at)
        error = _clip(result.error)
        if result.outcome == "delivered":
            delivered.append({"b_id": result.outbox_id, "b_at": at})
        elif result.outcome == "retry":
            assert result.next_attempt_at is not None  # checked on construction
            retry.append(
                {
                    "b_id": result.outbox_id,
                    "b_next": driver_time(conn, time_column, result.next_attempt_at),
                    "b_error": error,
                }
            )
        else:
            dead.append({"b_id": result.outbox_id, "b_at": at, "b_error": error})
        attempts.append(
            (result.outbox_id, at, result.outcome, result.status_code, error, result.duration_ms)
        )
    if conn.dialect.name == "postgresql":
        if delivered:
            conn.execute(
                _SETTLE_DELIVERED_SET, _SETTLED.params([(d["b_id"], d["b_at"]) for d in delivered])
            )
    else:
        execute_many(conn, _SETTLE_DELIVERED, delivered)
    if retry:
        execute_many(conn, _SETTLE_RETRY, retry)
        execute_many(
            conn, _HOLD_FOLLOWERS, [{"b_id": r["b_id"], "b_next": r["b_next"]} for r in retry]
        )
    execute_many(conn, _SETTLE_DEAD, dead)
    execute_many(conn, _STORE_DOCUMENT, documents)
    insert_rows(conn, delivery_attempts, _ATTEMPT_COLUMNS, attempts)


_ATTEMPT_COLUMNS = ("outbox_id", "attempted_at", "outcome", "status_code", "error", "duration_ms")
