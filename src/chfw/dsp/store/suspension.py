"""Suspending delivery to a Service User whose endpoint refuses everything, and resuming it.

A supplier whose own set-up is wrong (a wrong trust file, a wrong DUIS version) answers
400 to every alert: without this, its whole backlog would be dead-lettered on the first
try, silently. Workers count permanent refusals (400/413) per user in
``service_users.refusals_in_a_row`` (a 2xx resets it; temporary failures leave it);
when the run reaches ``suspend_after_refusals`` the user is suspended: ``suspended_at``
and the reason are set, and claims hold its pending alerts (pending, out of the due
range, unsent; :func:`chfw.dsp.store.outbox.claim.hold_users`) instead of leasing
them. :func:`resume` (``chfw users resume``) replays the alerts the run dead-lettered
and makes every pending alert of the user due: the claim's per-(CH, user) order
delivers them in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import UserId
from chfw.dsp.store import audit
from chfw.dsp.store.outbox.operate import make_due, replay
from chfw.dsp.store.outbox.values import _clip
from chfw.dsp.store.schema import outbox, service_users
from chfw.exceptions import StoreError
from chfw.shared.db.sql import from_db_opt, to_db


@dataclass
class RefusalRun:
    """What one batch of results says about one user's endpoint, in order of attempts.

    ``reset``: a 2xx came; ``refused`` then counts only the refusals after the last one,
    the first of which was attempted at ``first_at``.
    """

    refused: int = 0
    reset: bool = False
    last_reason: str | None = None
    first_at: datetime | None = None

    def refusal(self, reason: str | None, at: datetime) -> None:
        if not self.refused:
            self.first_at = at
        self.refused += 1
        self.last_reason = reason

    def delivered(self) -> None:
        self.refused = 0
        self.first_at = None
        self.reset = True


@dataclass(frozen=True, slots=True)
class Suspended:
    """A user whose delivery a batch of results suspended."""

    user_id: str  # hex
    refusals: int
    reason: str


def note_refusals(
    conn: Connection, runs: Mapping[str, RefusalRun], now: datetime, threshold: int
) -> list[Suspended]:
    """Add each user's refusals to its run (or restart it after a 2xx); suspend the users
    whose run reaches ``threshold`` (0: never). Returns those suspended now."""
    at = to_db(now)
    suspended: list[Suspended] = []
    where = service_users.c.user_id
    for user, run in sorted(runs.items()):
        first = None if run.first_at is None else to_db(run.first_at)
        if run.reset:
            values: dict[str, object] = {"refusals_in_a_row": run.refused, "refusals_since": first}
        else:
            values = {
                "refusals_in_a_row": service_users.c.refusals_in_a_row + run.refused,
                "refusals_since": sa.func.coalesce(service_users.c.refusals_since, first),
            }
        conn.execute(sa.update(service_users).where(where == user).values(**values))
        if threshold <= 0 or not run.refused:
            continue
        found = conn.execute(
            sa.select(service_users.c.refusals_in_a_row, service_users.c.refusals_since).where(
                where == user, service_users.c.suspended_at.is_(None)
            )
        ).first()
        if found is None or found.refusals_in_a_row < threshold:
            continue
        since = from_db_opt(found.refusals_since) or now
        reason = _clip(
            f"{found.refusals_in_a_row} permanent refusals in a row since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC; last: {run.last_reason}"
        )
        assert reason is not None
        conn.execute(
            sa.update(service_users)
            .where(where == user)
            .values(suspended_at=at, suspended_reason=reason)
        )
        suspended.append(Suspended(user, found.refusals_in_a_row, reason))
    return suspended


@dataclass(frozen=True, slots=True)
class Resumed:
    """What a resume did: dead letters of the refusal run replayed, pending rows made due."""

    was_suspended: bool
    replayed: int
    made_due: int


def resume(conn: Connection, user_id: UserId, actor: str, now: datetime) -> Resumed:
    """Resume delivery to a user (suspended or not): replay the alerts dead-lettered since
    its refusal run began, make all its pending alerts due, clear the run; audited."""
    row = conn.execute(
        sa.select(service_users.c.suspended_at, service_users.c.refusals_since).where(
            service_users.c.user_id == user_id.hex
        )
    ).first()
    if row is None:
        raise StoreError(f"Service User {user_id} is not registered (add it with `chfw users add`)")
    replayed = 0
    since = from_db_opt(row.refusals_since)
    if since is not None:
        ids = list(
            conn.execute(
                sa.select(outbox.c.id)
                .where(
                    outbox.c.user_id == user_id.hex,
                    outbox.c.state == "dead",
                    outbox.c.next_attempt_at >= to_db(since),
                )
                .order_by(outbox.c.id)
            ).scalars()
        )
        replayed = len(replay(conn, ids, actor, now).changed)
    conn.execute(
        sa.update(service_users)
        .where(service_users.c.user_id == user_id.hex)
        .values(suspended_at=None, suspended_reason=None, refusals_in_a_row=0, refusals_since=None)
    )
    due = make_due(conn, now, user_id.hex)
    result = Resumed(row.suspended_at is not None, replayed, due)
    detail = {"user_id": str(user_id), "was_suspended": result.was_suspended}
    audit.record(conn, actor, "users.resume", {**detail, "replayed": replayed, "made_due": due})
    return result
