"""Alert checks off the event loop, each with a deadline, so one POST can never stall another.

Checking a body (parse, canonical form, ECDSA, schema) is CPU work in C
libraries. Done on the event loop, a body that took long to check would
hold every other request of the process: health checks, the dashboard,
valid alerts. So checks run on a few threads of their own, and the request
waits for its check at most :attr:`ReceiverConfig.check_seconds`. A check
that overruns is answered 503 (the DSP retries: the alert is not refused for
good) and noted; its thread finishes in the background, and the pool's size
bounds how many such threads there can be. The safe parser refuses the
documents known to make libxml2 run without end (a DOCTYPE) before it
starts, so the deadline is the second line of defence, not the first.
An exception a check should never raise refuses that document (400) and is
logged with its traceback, rather than answered 500; the fuzzer
(bench/fuzz_receiver.py) holds :meth:`AlertReceiver.check` itself to raising
nothing at all.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import structlog

from chfw.supplier.pipeline import AlertReceiver, Checked, Refused

log = structlog.get_logger("chfw.supplier")


class CheckPool:
    """Runs :meth:`AlertReceiver.check` on worker threads, with the config's deadline."""

    def __init__(self, receiver: AlertReceiver) -> None:
        self.receiver = receiver
        self._pool = ThreadPoolExecutor(
            max_workers=receiver.config.check_threads, thread_name_prefix="chfw-receiver-check"
        )

    async def check(self, body: bytes, remote: str | None) -> Checked:
        """The check's answer, or a 503 refusal once the deadline has passed."""
        deadline = self.receiver.config.check_seconds
        future = self._pool.submit(self.receiver.check, body, remote)
        try:
            async with asyncio.timeout(deadline):  # no task of its own, unlike wait_for
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()  # still queued: it never runs
            log.warning("alert_check_overran", remote=remote, size=len(body), seconds=deadline)
            reason = (
                f"checking this alert took longer than {deadline:g} s; the receiver is "
                "overloaded or the document is hostile: send it again later"
            )
            return Refused(503, reason, self.receiver.config.clock(), remote, size=len(body))
        except Exception:  # a bug in a check: refuse the document, answer, and say so loudly
            log.exception("alert_check_failed", remote=remote, size=len(body))
            reason = "the receiver could not check this document (logged as alert_check_failed)"
            return Refused(400, reason, self.receiver.config.clock(), remote, size=len(body))

    def close(self) -> None:
        """Stop taking checks; running ones finish on their own threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
