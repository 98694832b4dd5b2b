"""Group commit: one thread records for every request, many alerts per transaction.

A transaction's fixed cost (BEGIN, COMMIT, the WAL append) is larger than
recording one alert, so requests hand their checked alert to this writer and
wait; whatever arrived while the last transaction ran goes into the next one.
With one request at a time this is one transaction per alert, as before; with
the DSP's several connections it is one per batch. Every request is answered
only after the transaction holding its alert committed.

If a batch's transaction fails, each of its alerts is retried alone, so one
bad write cannot fail the others; the one that still fails gets the error
(the app answers 500 and the DSP retries it later).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, InvalidStateError

from chfw.receiver.pipeline import AlertReceiver, Checked
from chfw.receiver.recording import RecordResult

MAX_BATCH = 256
IDLE_SECONDS = 1.0

_Work = tuple[Checked, "Future[RecordResult | None]"]


class RecordWriter:
    """Records checked alerts in batches on a thread of its own, started on demand."""

    def __init__(self, receiver: AlertReceiver, *, max_batch: int = MAX_BATCH) -> None:
        self.receiver = receiver
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self.batches = 0  # transactions committed (for tests and metrics)

    def submit(self, checked: Checked) -> Future[RecordResult | None]:
        """Queue ``checked``; the future is done once its transaction committed."""
        future: Future[RecordResult | None] = Future()
        with self._lock:
            self._queue.put((checked, future))
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
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Work]) -> None:
        try:
            with self.receiver.engine.begin() as conn:
                results = self.receiver.record_many(conn, [checked for checked, _ in batch])
        except Exception as error:  # handed to the waiting request, never lost
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return
            for work in batch:  # alone, so that one bad write cannot fail the others
                self._write([work])
            return
        self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: Future[RecordResult | None], outcome: RecordResult | Exception | None) -> None:
    """Complete a request's future, unless the request is gone (client disconnected)."""
    try:
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:  # cancelled: the alert is recorded, nobody waits for the answer
        pass
