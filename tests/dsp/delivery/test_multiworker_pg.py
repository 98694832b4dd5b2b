"""`chfw worker` processes sharing one PostgreSQL outbox: nothing twice, none lost, in order.

A few thousand alerts for a few hundred (CH, supplier) chains are written to
the outbox interleaved, as a wave writes them. Four worker processes drain it
at once into one recording receiver on 127.0.0.1, which answers 503 to the
first POST of some alerts so that retries hold chains back while the others
go on. The receiver's log is then the ground truth:

- every alert was accepted (2xx) exactly once, and POSTed only as often as
  the script made necessary;
- per (CH, user), POSTs arrive strictly in outbox order: an alert is never
  sent before the one ahead of it was accepted.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain.values import DeviceId, UserId
from chfw.dsp.store import outbox
from chfw.shared.db.engine import create_engine_for
from tests.dsp.delivery.helpers import add_user, alert
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver

CHFW = Path(sys.executable).parent / "chfw"
WORKERS = 4
HUBS = 250
USERS = 40
ALERTS = 3000
FLAKY_EVERY = 30  # one alert in 30 gets a 503 on its first POST
MAX_ROUNDS = 20  # `--until-idle` runs leave retries that are not yet due for the next round

Chain = tuple[str, str]  # (device hex, user hex)


def response_id_of(body: bytes) -> str:
    match = re.search(rb"<sr:ResponseID>([^<]+)</sr:ResponseID>", body)
    assert match is not None, body[:200]
    return match.group(1).decode()


class Wave:
    """The alerts written, the chain each belongs to and its place in that chain."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.users = [UserId(bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 2, 0, n])) for n in range(USERS)]
        hubs = [DeviceId(bytes([0, 0xDB, 0x20, 0, 0, 0, n >> 8, n & 0xFF])) for n in range(HUBS)]
        # Each CH has two suppliers (electricity and gas, say): 500 chains.
        chains = [(hub, user) for hub in hubs for user in rng.sample(self.users, 2)]
        self.alerts: list[outbox.NewAlert] = []
        self.place: dict[str, tuple[Chain, int]] = {}
        length: Counter[Chain] = Counter()
        for n in range(ALERTS):
            hub, user = rng.choice(chains)
            response_id = f"90-B3-D5-1F-30-00-00-02:{hub}:{n:07d}"
            chain = (hub.hex, user.hex)
            self.place[response_id] = (chain, length[chain])
            length[chain] += 1
            self.alerts.append(alert(response_id, user, hub))
        self.length = dict(length)
        self.flaky = [a.response_id for a in self.alerts[::FLAKY_EVERY]]


def run_workers(database_url: str, cwd: Path) -> list[str]:
    """One round: WORKERS `chfw worker --until-idle` processes at once; their outputs."""
    env = {
        **os.environ,
        "CHFW_DATABASE_URL": database_url,
        "CHFW_WORKER_BATCH_SIZE": "40",  # small claims: the work spreads over every process
        "CHFW_RETRY_INITIAL_SECONDS": "0.05",
        "CHFW_RETRY_MAX_SECONDS": "0.2",
        "CHFW_DELIVERY_TIMEOUT_SECONDS": "30",
    }
    env.pop("CHFW_CONFIG", None)
    processes = [
        subprocess.Popen(
            [str(CHFW), "worker", "--until-idle"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=240)
        assert process.returncode == 0, out
        outputs.append(out)
    return outputs


def delivered_by(output: str) -> int:
    """The delivered count of one worker's summary line ("delivered N, retried ...")."""
    match = re.search(r"^delivered (\d+),", output, re.MULTILINE)
    assert match is not None, output
    return int(match.group(1))


@pytest.mark.slow
class TestWorkersShareOneOutbox:
    """Four worker processes drain one outbox: every alert once, every chain in order."""

    def test_no_duplicates_no_losses_order_held(self, pg_database_url: str, tmp_path: Path) -> None:
        wave = Wave(seed=64)
        receiver = ScriptedReceiver().start()
        try:
            for response_id in wave.flaky:
                receiver.script(Answer(503), match=f">{response_id}<".encode())
            engine: Engine = create_engine_for(pg_database_url)
            for user in wave.users:
                add_user(engine, user, receiver.url(f"/duis/{user.hex}"), max_in_flight=4)
            with engine.begin() as conn:
                outbox.enqueue(conn, wave.alerts, datetime.now(UTC))
            delivered_per_worker: list[int] = []
            for _ in range(MAX_ROUNDS):
                outputs = run_workers(pg_database_url, tmp_path)
                delivered_per_worker.extend(delivered_by(out) for out in outputs)
                with engine.connect() as conn:
                    counts = outbox.counts(conn)
                if counts["pending"] == 0:
                    break
            engine.dispose()
        finally:
            receiver.stop()

        received = receiver.received
        accepted = Counter(response_id_of(r.body) for r in received if 200 <= r.status < 300)
        posts = Counter(response_id_of(r.body) for r in received)
        assert counts == {"pending": 0, "retrying": 0, "delivered": ALERTS, "dead": 0, "parked": 0}
        # None lost, none delivered twice, and no POST beyond the scripted failures.
        assert set(accepted) == set(wave.place)
        assert set(accepted.values()) == {1}
        assert sum(posts.values()) == ALERTS + len(wave.flaky)
        assert all(posts[rid] == 2 for rid in wave.flaky)
        # The work was shared: at least two processes delivered some of it.
        assert sum(delivered_per_worker) == ALERTS
        assert sum(1 for n in delivered_per_worker if n > 0) >= 2
        # Per (CH, user): each POST is for the chain's current head, which moves on
        # only once the receiver has accepted it.
        head: dict[Chain, int] = dict.fromkeys(wave.length, 0)
        for request in received:
            chain, place = wave.place[response_id_of(request.body)]
            assert request.path == f"/duis/{chain[1]}"
            assert place == head[chain], (chain, place, head[chain])
            if 200 <= request.status < 300:
                head[chain] += 1
        assert head == wave.length
