"""The outbox: one row per alert per recipient, claimed and settled by delivery workers.

State machine (see ``schema.outbox``)::

    pending --2xx--> delivered
    pending --400 / retry horizon passed--> dead --operator replay--> pending
    parked --operator retry, built--> pending

A parked row is an alert the intake could not build (its recipient's DUIS version had
no usable schema: a setting to fix, docs/configuration.md): it holds its ResponseID
and what it is about (user, CH, code, version, firmware, history id), an empty
document and the reason in ``last_error``. ``chfw outbox retry`` builds it
(``chfw.dsp.parked``) and makes it pending. Like dead rows, parked rows do not hold
up later rows of their CH and user.

Rows never vanish here: delivered rows stay until ``chfw.dsp.store.archive`` moves old ones out.
"Retrying" is not a state of its own but a view: a pending row with
``attempts > 0``; every count (``report``) keeps ``retrying`` inside ``pending``.

Times go in and come out timezone-aware, stored as UTC (``store._sql``).

One module per job, all re-exported here (``from chfw.dsp.store import outbox``,
``outbox.enqueue(...)``):

- ``values``: the rows and results that go in and come out;
- ``write``: new rows, pending (:func:`enqueue`) or parked (:func:`park`);
- ``claim``: leasing due rows, in order per (CH, user), and extending or releasing leases;
- ``settle``: recording attempt results;
- ``operate``: operators' retry, replay and building of parked rows; rows made due now when
  an endpoint is back;
- ``report``: listings, one row in detail, counts.
"""

from chfw.dsp.store.outbox.claim import (
    claim_due_rows,
    claimed_alerts,
    extend_leases,
    refresh_statistics,
    release,
)
from chfw.dsp.store.outbox.operate import (
    dead_ids,
    make_due,
    parked_ids,
    parked_rows,
    replay,
    resolve,
    retry_now,
    still_parked,
    unpark,
)
from chfw.dsp.store.outbox.report import (
    attempt_rows,
    counts,
    counts_by,
    get,
    list_rows,
    next_due_at,
    oldest_due_age,
    oldest_undelivered,
    row_of,
)
from chfw.dsp.store.outbox.settle import record_results
from chfw.dsp.store.outbox.values import (
    ALERT_CODES,
    LIST_STATES,
    OUTCOMES,
    STATES,
    AlertCode,
    AttemptResult,
    AttemptRow,
    BulkChange,
    ClaimedAlert,
    CountRow,
    NewAlert,
    NewParked,
    OutboxCounts,
    OutboxDetail,
    OutboxRow,
    Outcome,
    ParkedRow,
    State,
    Unparked,
)
from chfw.dsp.store.outbox.write import enqueue, park

__all__ = [
    "ALERT_CODES",
    "LIST_STATES",
    "OUTCOMES",
    "STATES",
    "AlertCode",
    "AttemptResult",
    "AttemptRow",
    "BulkChange",
    "ClaimedAlert",
    "CountRow",
    "NewAlert",
    "NewParked",
    "OutboxCounts",
    "OutboxDetail",
    "OutboxRow",
    "Outcome",
    "ParkedRow",
    "State",
    "Unparked",
    "attempt_rows",
    "claim_due_rows",
    "claimed_alerts",
    "counts",
    "counts_by",
    "dead_ids",
    "enqueue",
    "extend_leases",
    "get",
    "list_rows",
    "make_due",
    "next_due_at",
    "oldest_due_age",
    "oldest_undelivered",
    "park",
    "parked_ids",
    "parked_rows",
    "record_results",
    "refresh_statistics",
    "release",
    "replay",
    "resolve",
    "retry_now",
    "row_of",
    "still_parked",
    "unpark",
]
