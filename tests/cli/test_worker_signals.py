"""`chfw worker` stopped with SIGTERM mid-POST: it exits 0, and no alert is lost or left leased.

The worker runs as a real subprocess (`python -m chfw worker`) against a
slow supplier endpoint; SIGTERM arrives while a POST is in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store.schema import outbox
from tests.dsp.delivery.helpers import HUB_1, HUB_2, SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver

GRACE_SECONDS = 60  # a bound for a hung process, not a timing assertion


def start_worker(database_url: str, folder: Path, **settings: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
    env.update({"CHFW_DATABASE_URL": database_url, "CHFW_WORKER_POLL_SECONDS": "0.05"})
    env.update({f"CHFW_{key.upper()}": value for key, value in settings.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "chfw", "worker"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(worker: subprocess.Popen[str]) -> tuple[int, str]:
    worker.send_signal(signal.SIGTERM)
    try:
        out, err = worker.communicate(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        out, err = worker.communicate()
        pytest.fail(f"the worker did not stop on SIGTERM: {err[-2000:]}")
    return worker.returncode, out + err


def rows(engine: Engine) -> dict[str, sa.Row[tuple[str, int, object]]]:
    with engine.connect() as conn:
        result = conn.execute(
            sa.select(outbox.c.response_id, outbox.c.state, outbox.c.attempts, outbox.c.lease_until)
        )
        return {r.response_id: r for r in result}


def received_ids(receiver: ScriptedReceiver) -> set[str]:
    return {r.body.split(b"<sr:ResponseID>")[1].split(b"<")[0].decode() for r in receiver.received}


@pytest.fixture
def slow_receiver() -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver(default=Answer(204, delay=1.0)).start()
    yield server
    server.stop()


class TestSigterm:
    """In-flight POSTs finish and are recorded; everything else goes back to pending, unleased."""

    def test_in_flight_delivered_rest_released(
        self, engine: Engine, database_url: str, slow_receiver: ScriptedReceiver, tmp_path: Path
    ) -> None:
        add_user(engine, SUPPLIER_A, slow_receiver.url(), max_in_flight=1)
        now = datetime.now(UTC)
        enqueue(engine, [alert(f"R-{n}", hub=HUB_1 if n % 2 else HUB_2) for n in range(6)], now)
        worker = start_worker(database_url, tmp_path)
        try:
            assert slow_receiver.arrived.wait(timeout=GRACE_SECONDS), "no POST arrived"
        finally:
            code, output = stop(worker)

        assert code == 0, output
        assert "stopping" in output
        after = rows(engine)
        delivered = {rid for rid, r in after.items() if r.state == "delivered"}
        assert delivered  # the POST in flight at SIGTERM was finished and recorded
        assert delivered == received_ids(slow_receiver)  # nothing sent and left unrecorded
        assert all(r.state in ("delivered", "pending") for r in after.values())
        assert all(r.lease_until is None for r in after.values() if r.state == "pending")
        assert len(after) == 6

    def test_post_outlasting_its_timeout_is_retried_later(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        receiver = ScriptedReceiver(default=Answer(204, delay=4.0)).start()
        try:
            add_user(engine, SUPPLIER_A, receiver.url(), max_in_flight=1)
            enqueue(engine, [alert("R-1")], datetime.now(UTC))
            worker = start_worker(database_url, tmp_path, delivery_timeout_seconds="1")
            try:
                assert receiver.arrived.wait(timeout=GRACE_SECONDS), "no POST arrived"
            finally:
                code, output = stop(worker)
        finally:
            receiver.stop()

        assert code == 0, output
        (only,) = rows(engine).values()
        assert only.state == "pending"  # not lost: due again after its backoff
        assert only.attempts == 1
        assert only.lease_until is None
