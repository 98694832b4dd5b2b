"""A running `chfw worker` against an endpoint that refuses every alert: delivery is suspended,
the alerts stay pending; `chfw users resume` after the fix delivers them in order.

The worker and the `chfw users` commands run as real processes (issue 23, item 4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store.schema import outbox, service_users
from tests.cli.test_worker_recovery import wait_for
from tests.cli.test_worker_signals import start_worker, stop
from tests.dsp.delivery.helpers import HUB_1, HUB_2, SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver

REFUSALS = 5  # suspend_after_refusals for this test (default 20)


def chfw(database_url: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
    env["CHFW_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "chfw", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def response_ids(receiver: ScriptedReceiver, status: int) -> list[str]:
    return [
        r.body.split(b"<sr:ResponseID>")[1].split(b"<")[0].decode()
        for r in receiver.received
        if r.status == status
    ]


class TestRefusingEndpoint:
    def test_suspended_then_resumed_in_order(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        receiver = ScriptedReceiver(default=Answer(400, b"Signature verification failed")).start()
        try:
            add_user(engine, SUPPLIER_A, receiver.url(), max_in_flight=1)
            alerts = [alert(f"R-{n:02}", hub=(HUB_1, HUB_2)[n % 2]) for n in range(30)]
            enqueue(engine, alerts, datetime.now(UTC))
            worker = start_worker(
                database_url, tmp_path, suspend_after_refusals=str(REFUSALS), worker_batch_size="4"
            )
            try:
                wait_for(engine, service_users.c.suspended_at.is_not(None), 1)
                listed = chfw(database_url, tmp_path, "users", "list", "--json")
                assert listed.returncode == 0, listed.stderr
                (user,) = json.loads(listed.stdout)
                assert user["suspended"] is True
                assert f"{REFUSALS} permanent refusals in a row" in user["suspended_reason"]
                assert "400" in user["suspended_reason"]
                refused = len(receiver.received)
                with engine.connect() as conn:
                    states = dict(
                        conn.execute(
                            sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
                        ).all()
                    )
                # Only the run (and POSTs already under way) went dead; the rest wait.
                assert states["dead"] == refused >= REFUSALS
                assert states["pending"] == 30 - refused

                receiver.default = Answer(204)  # the supplier fixes its set-up
                resumed = chfw(database_url, tmp_path, "users", "resume", str(SUPPLIER_A))
                assert resumed.returncode == 0, resumed.stderr
                assert f"{refused} dead letter(s) of the run replayed" in resumed.stdout
                wait_for(engine, outbox.c.state == "delivered", 30)
            finally:
                code, output = stop(worker)
        finally:
            receiver.stop()
        assert code == 0, output
        assert "delivery_suspended" in output
        delivered = response_ids(receiver, 204)
        assert sorted(delivered) == sorted(a.response_id for a in alerts)
        for hub in (HUB_1, HUB_2):  # in order per CH, the replayed dead letters first
            mine = [a.response_id for a in alerts if a.device_id == hub]
            assert [rid for rid in delivered if rid in mine] == mine
        listed = chfw(database_url, tmp_path, "users", "list", "--json")
        assert json.loads(listed.stdout)[0]["suspended"] is False
