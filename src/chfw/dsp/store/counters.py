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
from sqlalchemy import event
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

    It may be called inside a transaction on ``engine`` (the intake renders
    alerts inside its write transaction). On SQLite a blocking refill in a
    second transaction would wait for the caller's own lock (one writer), so
    there the block is reserved *in the caller's transaction* and kept private
    to it: if that transaction rolls back, so does the reservation, together
    with every use of its values; whatever it did not use is dropped when it
    ends. On PostgreSQL a second transaction waits for nobody's row locks but
    the counter's own, so the block is reserved in a short transaction of its
    own even then: the counter row is never held for the length of the
    caller's transaction, where other processes' refills would queue behind
    it. Values are unique, not dense.
    Transactions are recognised through ``engine``'s events: use the same
    Engine object for both.
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
        self._local = threading.local()  # per thread: open transactions, private block
        self._one_writer = engine.dialect.name == "sqlite"
        self._listeners = (
            ("begin", self._on_begin),
            ("commit", self._on_end),
            ("rollback", self._on_end),
        )
        for identifier, listener in self._listeners:
            event.listen(engine, identifier, listener)

    # -- which transactions this thread has open on the engine -------------------------------

    def _open(self) -> list[Connection]:
        stack: list[Connection] | None = getattr(self._local, "open", None)
        if stack is None:
            stack = self._local.open = []
        return stack

    def _on_begin(self, conn: Connection) -> None:
        self._open().append(conn)

    def _on_end(self, conn: Connection) -> None:
        stack = self._open()
        if conn in stack:
            stack.remove(conn)
        private = getattr(self._local, "private", None)
        if private is not None and private[0] is conn:
            self._local.private = None  # unused values of the transaction: dropped

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

    def _take_private(self, conn: Connection, n: int) -> list[int]:
        private: tuple[Connection, range] | None = getattr(self._local, "private", None)
        if private is None or private[0] is not conn or len(private[1]) < n:
            private = (conn, allocate(conn, self.name, max(self.block_size, n)))
        self._local.private = (conn, private[1][n:])
        return list(private[1][:n])

    def take(self, n: int) -> list[int]:
        """``n`` fresh values."""
        if n < 1:
            raise InvalidValueError(f"take needs at least one value, got {n}")
        while True:
            with self._lock:
                values = self._pop_shared(n)
                low = self._available < max(self.low_water, 1)
            if values is not None:
                if low:
                    self._start_refill()
                return values
            open_here = self._open()
            if open_here and self._one_writer:
                self._start_refill()  # for the transactions after this one
                return self._take_private(open_here[-1], n)
            # No lock is held while waiting for the database: a thread holding the
            # write lock may be about to ask this object for values.
            self._push_shared(self._allocate_own(max(self.block_size, n)))

    def next(self) -> int:
        """One fresh value."""
        return self.take(1)[0]

    __call__ = next

    def reserve(self, n: int) -> None:
        """Make sure ``n`` values are on hand before a transaction that will need them.

        Inside a transaction on SQLite this only starts a background refill.
        """
        with self._lock:
            missing = n - self._available
        if missing <= 0:
            return
        if self._open() and self._one_writer:
            self._start_refill()
            return
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
        """Stop listening to the engine's transactions; values on hand are dropped."""
        self.settle()
        for identifier, listener in self._listeners:
            if event.contains(self.engine, identifier, listener):
                event.remove(self.engine, identifier, listener)
        with self._lock:
            self._shared.clear()
            self._available = 0
