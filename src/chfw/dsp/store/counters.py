"""Never-repeating integers (DUIS ResponseID counters), handed out in blocks.

A counter is one row holding the next free value. :func:`allocate` moves it
forward by n in the caller's transaction: the UPDATE takes the row's write
lock (PostgreSQL) or the database's (SQLite), so concurrent allocators
serialise and no two get overlapping ranges. Values of a block a process
never used are simply skipped -- counters are unique, not dense.
"""

from __future__ import annotations

import threading
from collections import deque

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from chfw.dsp.store.schema import counters
from chfw.exceptions import InvalidValueError
from chfw.shared.db.sql import insert_for

RESPONSE_ID = "response_id"


def allocate(conn: Connection, name: str, n: int) -> range:
    """Reserve ``n`` consecutive values of counter ``name`` (created at 1 on first use).

    The values are spent once the transaction commits, and the lock taken is
    held until it ends: prefer a short transaction of its own (CounterBlock).
    """
    if n < 1:
        raise InvalidValueError(f"a counter block needs at least one value, got {n}")
    bump = (
        sa.update(counters)
        .where(counters.c.name == name)
        .values(next_value=counters.c.next_value + n)
        .returning(counters.c.next_value)
    )
    end = conn.execute(bump).scalar_one_or_none()
    if end is None:
        conn.execute(
            insert_for(conn, counters)
            .values(name=name, next_value=1)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        end = conn.execute(bump).scalar_one()
    return range(int(end) - n, int(end))


def peek(conn: Connection, name: str) -> int:
    """The next value a new block would start at (1 for a counter never used)."""
    value = conn.execute(
        sa.select(counters.c.next_value).where(counters.c.name == name)
    ).scalar_one_or_none()
    return 1 if value is None else int(value)


class CounterBlock:
    """Thread-safe supplier of counter values, reserving ``block_size`` at a time.

    Blocks are reserved in short transactions of their own, so intake
    processes do not contend on the counter row per alert, and a fresh block
    is fetched in the background when fewer than ``low_water`` values remain.

    The caller says which transaction it is in (``take(n, conn)``): the intake
    takes counters inside its write transaction. On SQLite a blocking refill
    in a second transaction would wait for the caller's own lock (one writer),
    so there, when no committed values are on hand, the values are allocated
    *in the caller's transaction*: if it rolls back, so does the allocation,
    together with every use of its values. On PostgreSQL a second transaction
    waits for nobody's row locks but the counter's own, so a block is reserved
    in a short transaction of its own even then: the counter row is never held
    for the length of the caller's transaction, where other processes' refills
    would queue behind it. Values are unique, not dense.
    """

    def __init__(
        self,
        engine: Engine,
        name: str = RESPONSE_ID,
        block_size: int = 1000,
        low_water: int | None = None,
    ) -> None:
        if block_size < 1:
            raise InvalidValueError(f"block_size must be at least 1, got {block_size}")
        self.engine = engine
        self.name = name
        self.block_size = block_size
        self.low_water = block_size // 4 if low_water is None else low_water
        self.last_error: Exception | None = None  # of the most recent background refill
        self._lock = threading.Lock()
        self._shared: deque[range] = deque()  # committed blocks: anyone may use them
        self._available = 0
        self._refill_thread: threading.Thread | None = None
        self._one_writer = engine.dialect.name == "sqlite"

    # -- handing out values -----------------------------------------------------------------

    @property
    def available(self) -> int:
        """Values on hand in committed blocks (usable without touching the database)."""
        with self._lock:
            return self._available

    def _pop_shared(self, n: int) -> list[int] | None:
        if self._available < n:
            return None
        out: list[int] = []
        while len(out) < n:
            block = self._shared[0]
            count = min(n - len(out), len(block))
            out.extend(block[:count])
            if count == len(block):
                self._shared.popleft()
            else:
                self._shared[0] = block[count:]
        self._available -= n
        return out

    def _push_shared(self, block: range) -> None:
        with self._lock:
            self._shared.append(block)
            self._available += len(block)

    def _allocate_own(self, n: int) -> range:
        with self.engine.begin() as conn:
            return allocate(conn, self.name, n)

    def take(self, n: int, conn: Connection | None = None) -> list[int]:
        """``n`` fresh values (none for ``n == 0``).

        ``conn`` is the transaction the caller is in, if any (on this block's
        engine): on SQLite the values may then be allocated in it.
        """
        if n < 0:
            raise InvalidValueError(f"take needs a count of values, got {n}")
        if n == 0:
            return []
        while True:
            with self._lock:
                values = self._pop_shared(n)
                low = self._available < max(self.low_water, 1)
            if values is not None:
                if low:
                    self._start_refill()
                return values
            if conn is not None and self._one_writer:
                self._start_refill()  # for the transactions after this one
                return list(allocate(conn, self.name, n))
            # No lock is held while waiting for the database: a thread holding the
            # write lock may be about to ask this object for values.
            self._push_shared(self._allocate_own(max(self.block_size, n)))

    def next(self) -> int:
        """One fresh value, outside any transaction."""
        return self.take(1)[0]

    def reserve(self, n: int) -> None:
        """Make sure ``n`` values are on hand before a transaction that will need them.

        Call it outside any transaction on this engine (on SQLite it would wait
        for the caller's own write lock).
        """
        with self._lock:
            missing = n - self._available
        if missing > 0:
            self._push_shared(self._allocate_own(max(self.block_size, missing)))

    # -- background refill ------------------------------------------------------------------

    def _start_refill(self) -> None:
        with self._lock:
            if self._refill_thread is not None and self._refill_thread.is_alive():
                return
            thread = threading.Thread(
                target=self._refill_in_background, name=f"counter-{self.name}", daemon=True
            )
            self._refill_thread = thread
        thread.start()

    def _refill_in_background(self) -> None:
        try:
            self._push_shared(self._allocate_own(self.block_size))
        except Exception as exc:  # any failure: the next take() refills in the foreground
            self.last_error = exc

    def settle(self, timeout: float | None = None) -> None:
        """Wait for a background refill in progress (tests, shutdown)."""
        thread = self._refill_thread
        if thread is not None:
            thread.join(timeout)

    def close(self) -> None:
        """Wait for a refill in progress; values on hand are dropped."""
        self.settle()
        with self._lock:
            self._shared.clear()
            self._available = 0
