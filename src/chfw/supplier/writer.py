"""Group commit: one thread records for every request, many alerts per transaction.

A transaction's fixed cost (BEGIN, the statements' set-up, COMMIT and its WAL
write) is several times that of recording one alert, so the app gathers the
alerts checked in one turn of its event loop (:class:`LoopBatcher`) and hands
them over together; the writer thread takes every batch queued while its last
transaction ran and records them in one, waiting a moment (at most
:data:`COMMIT_DELAY_SECONDS`) for as many alerts as the previous transaction
had -- the idea of PostgreSQL's ``commit_delay``. A lone request is written at
once; under the DSP's concurrent posts, many alerts share a commit. Every request
is answered only after the transaction holding its alert committed.

If a transaction fails, each of its alerts is retried alone, so one bad write
cannot fail the others; one that still fails gets the error (the app answers
500 and the DSP retries it later).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress

from chfw.supplier.pipeline import AlertReceiver, Checked
from chfw.supplier.recording import RecordResult

MAX_BATCH = 512  # alerts per transaction, at most
COMMIT_DELAY_SECONDS = 0.010  # the longest a batch waits to be as large as the previous one
IDLE_SECONDS = 1.0  # the thread ends after this long without work (restarted on demand)

Written = RecordResult | None | Exception
"""What became of one item: its result (None for a refusal), or why it was not recorded."""

_Work = tuple[Sequence[Checked], "Future[list[Written]]"]


class RecordWriter:
    """Records checked alerts in batches on a thread of its own, started on demand."""

    def __init__(
        self,
        receiver: AlertReceiver,
        *,
        max_batch: int = MAX_BATCH,
        commit_delay: float = COMMIT_DELAY_SECONDS,
    ) -> None:
        self.receiver = receiver
        self.max_batch = max_batch
        self.commit_delay = commit_delay
        self._expected = 1  # size of the last batch: as many requests are likely in flight
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self.transactions = 0  # committed (for tests and metrics)
        self.recorded = 0  # items recorded

    def submit(self, items: Sequence[Checked]) -> Future[list[Written]]:
        """Queue ``items``; the future is done, one entry per item, once they are committed."""
        future: Future[list[Written]] = Future()
        with self._lock:
            self._queue.put((items, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="chfw-receiver-writer", daemon=True).start()
        return future

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # no submit can slip in between this check and the exit
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            self._write(self._gather(first))

    def _gather(self, first: _Work) -> list[_Work]:
        """``first``, everything queued behind it, and -- when the last batch was larger --
        what arrives within ``commit_delay``: the DSP's concurrent posts come back in step
        with the answers, so waiting a moment for the previous batch's count of them
        turns many small commits into one."""
        works = [first]
        size = len(first[0])
        deadline = time.monotonic() + self.commit_delay
        while size < self.max_batch:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if size >= self._expected or remaining <= 0:
                    break
                try:
                    work = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            works.append(work)
            size += len(work[0])
        self._expected = size
        return works

    def _write(self, works: list[_Work]) -> None:
        items = [item for batch, _ in works for item in batch]
        written = self._record(items)
        start = 0
        for batch, future in works:
            _settle(future, written[start : start + len(batch)])
            start += len(batch)

    def _record(self, items: list[Checked]) -> list[Written]:
        try:
            with self.receiver.engine.begin() as conn:
                results: list[Written] = list(self.receiver.record_many(conn, items))
        except Exception as error:  # handed to the waiting request, never lost
            if len(items) == 1:
                return [error]
            # Alone, so that one bad write cannot fail the others.
            return [written for item in items for written in self._record([item])]
        self.transactions += 1
        self.recorded += len(items)
        return results


def _settle(future: Future[list[Written]], written: list[Written]) -> None:
    with suppress(InvalidStateError):  # cancelled: recorded anyway, nobody waits for the answer
        future.set_result(written)


class LoopBatcher:
    """Gathers the alerts checked in one turn of the event loop into one writer submission.

    Requests whose data arrived together are checked one after another in the
    same turn; the submission is scheduled with ``call_soon``, so it runs after
    them and carries them all.
    """

    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer
        self._items: list[Checked] = []
        self._waiters: list[asyncio.Future[Written]] = []

    def record(self, checked: Checked) -> asyncio.Future[Written]:
        """Called on the event loop: the future is done once ``checked`` is committed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Written] = loop.create_future()
        if not self._items:
            loop.call_soon(self._flush, loop)
        self._items.append(checked)
        self._waiters.append(waiter)
        return waiter

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        try:
            done = self.writer.submit(items)
        except Exception as error:  # e.g. no thread could be started: answer, never hang
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(error)
            return

        def resolve(written: list[Written]) -> None:
            for waiter, outcome in zip(waiters, written, strict=True):
                if not waiter.done():
                    waiter.set_result(outcome)

        def hand_back(finished: Future[list[Written]]) -> None:  # on the writer thread
            with suppress(RuntimeError):  # the loop closed: the server is gone
                loop.call_soon_threadsafe(resolve, finished.result())

        done.add_done_callback(hand_back)
