"""Submissions queued behind the one an intake process works on: none is lost, and the
health check still answers (a load balancer must not take a busy intake out of service)."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from chfw.dsp.intake import create_app
from chfw.dsp.processing import Status
from chfw.shared.config import Settings
from tests.dsp.intake.helpers import post_message, stored
from tests.dsp.intake.server import running
from tests.small_dsp import Dsp

# Starlette runs blocking work in at most 40 threads (anyio's default); more submissions
# than that are posted, each holding one while it waits for its turn.
THREADS = 40
POSTS = 45


class TestBusyIntake:
    def test_health_answers_while_submissions_queue(self, dsp: Dsp) -> None:
        service = dsp.service
        release = threading.Event()
        process, submit = service._process, service.submit
        arrived = threading.Semaphore(0)

        def held(payloads: Any, csp: Any) -> Any:
            assert release.wait(timeout=60), "the test never released the batch"
            return process(payloads, csp)

        def counted(payloads: Any, csp: Any) -> Any:
            arrived.release()
            return submit(payloads, csp)

        service._process = held  # type: ignore[method-assign]
        service.submit = counted  # type: ignore[method-assign]
        answers: list[httpx.Response | BaseException] = []

        with running(create_app(Settings(), service)) as (host, port):
            base = f"http://{host}:{port}"

            def post(counter: int) -> None:
                try:
                    answers.append(post_message(base, dsp.credential, counter, timeout=60))
                except BaseException as exc:
                    answers.append(exc)

            posters = [threading.Thread(target=post, args=(10 + n,)) for n in range(POSTS)]
            for thread in posters:
                thread.start()
            try:
                # Every thread for blocking work holds a submission: one being processed
                # (held here), the others waiting for their turn.
                for _ in range(THREADS):
                    assert arrived.acquire(timeout=30)
                health = httpx.get(f"{base}/healthz", timeout=5)
            finally:
                release.set()
                for thread in posters:
                    thread.join(timeout=120)

        assert health.status_code == 200
        assert all(isinstance(answer, httpx.Response) for answer in answers), answers
        statuses = [answer.json()["status"] for answer in answers]  # type: ignore[union-attr]
        assert len(statuses) == POSTS
        assert set(statuses) == {Status.PROCESSED.value}
        assert stored(dsp.engine)["firmware_history"] == POSTS
