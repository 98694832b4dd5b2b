"""/healthz and /readyz on `chfw serve` and `chfw worker --metrics-port` (issue 23, item 1).

Real processes: the intake and the worker run as `python -m chfw ...` subprocesses; for
"the database went away", a PostgreSQL server of the test's own (scripts/pg.sh) is stopped
under a running intake and started again.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from chfw.dsp.store import migrate
from chfw.dsp.store.schema import outbox
from chfw.shared.db.engine import create_engine_for
from tests.cli.test_serve import BOUND, signing_files
from tests.cli.test_worker_recovery import wait_for
from tests.cli.test_worker_signals import stop
from tests.databases import upgrade
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import ScriptedReceiver, free_port
from tests.small_dsp import build_dsp

ROOT = Path(__file__).resolve().parents[2]


def start(database_url: str, folder: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m chfw ARGS` with the test's database and signing identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
    env.update(signing_files(folder), CHFW_DATABASE_URL=database_url)
    env["CHFW_WORKER_POLL_SECONDS"] = "0.05"
    return subprocess.Popen(
        [sys.executable, "-m", "chfw", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=BOUND)


def until(check: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    """Poll ``check`` (bounded: a hung or dead process fails the test)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the process ended waiting for {what}: {process.communicate()[1][-2000:]}")
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"never {what}")


def ready(port: int) -> bool:
    return get(port, "/readyz").status_code == 200


def unready(port: int) -> bool:
    return get(port, "/readyz").status_code == 503


def intake(database_url: str, folder: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = start(database_url, folder, "serve", "--port", str(port))
    until(lambda: get(port, "/healthz").status_code == 200, process, "listening")
    return process, port


class TestIntakeReadiness:
    def test_ready_then_an_old_schema_is_named(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        build_dsp(engine)
        process, port = intake(database_url, tmp_path)
        try:
            answer = get(port, "/readyz")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"status": "ready", "schema": migrate.head_revision()}
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE alembic_version SET version_num = '0010'"))
            answer = get(port, "/readyz")
            assert answer.status_code == 503
            (problem,) = answer.json()["problems"]
            assert "revision 0010" in problem
            assert "chfw db upgrade" in problem
            assert get(port, "/healthz").status_code == 200  # alive: no reason to restart it
            with engine.begin() as conn:  # a newer schema (migrations first) is fine
                conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
            assert get(port, "/readyz").status_code == 200
        finally:
            process.kill()
            process.communicate()


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A PostgreSQL server of this test's own (scripts/pg.sh): its URL, stop and start.

    Never the shared test server: this one is stopped under a running intake."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not os.environ.get("PG_BINDIR"):
        pytest.skip("no PostgreSQL server binaries on this machine")
    folder = Path(tempfile.mkdtemp(prefix="chfw-readyz-pg-"))  # postgres must enter it
    port = free_port()
    script = str(ROOT / "scripts" / "pg.sh")

    def start_server() -> str:
        done = subprocess.run(
            [script, "start", str(folder), str(port)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    def stop_server() -> None:
        subprocess.run([script, "stop", str(folder)], capture_output=True, check=True)

    def restart_server() -> None:
        assert start_server() == url  # same folder, same port: same URL

    url = start_server()
    try:
        yield url, stop_server, restart_server
    finally:
        stop_server()
        subprocess.run(["rm", "-rf", str(folder)], check=False)


class TestPostgresStopped:
    """PostgreSQL stopped under a running intake: /readyz 503 with the reason, /healthz 200;
    started again: ready again."""

    def test_readyz_follows_the_database(
        self,
        own_postgres: tuple[str, Callable[[], None], Callable[[], None]],
        tmp_path: Path,
    ) -> None:
        url, stop_server, start_server = own_postgres
        upgrade(url)
        engine = create_engine_for(url)
        build_dsp(engine)
        engine.dispose()
        process, port = intake(url, tmp_path)
        try:
            assert ready(port)
            stop_server()
            until(lambda: unready(port), process, "unready")
            answer = get(port, "/readyz")
            (problem,) = answer.json()["problems"]
            assert problem.startswith("database unreachable")
            assert get(port, "/healthz").status_code == 200
            start_server()
            until(lambda: ready(port), process, "ready again")
        finally:
            process.kill()
            process.communicate()


class TestWorkerMonitor:
    def test_metrics_health_and_readiness(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        receiver = ScriptedReceiver().start()
        port = free_port()
        try:
            add_user(engine, SUPPLIER_A, receiver.url())
            worker = start(database_url, tmp_path, "worker", "--metrics-port", str(port))
            try:
                until(lambda: get(port, "/healthz").status_code == 200, worker, "listening")
                assert ready(port)
                enqueue(engine, [alert("R-1")], datetime.now(UTC))
                wait_for(engine, outbox.c.state == "delivered", 1)
                text = get(port, "/metrics").text
            finally:
                code, output = stop(worker)
        finally:
            receiver.stop()
        assert code == 0, output
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("chfw_worker_attempts_total", (("outcome", "delivered"),))] == 1
        assert samples[("chfw_worker_claimed_total", ())] == 1
        assert ("chfw_signing_certificate_expiry_seconds", ()) not in samples  # labelled
        assert any(name == "chfw_signing_certificate_expiry_seconds" for name, _ in samples)

    def test_not_with_once(self, database_url: str, tmp_path: Path) -> None:
        done = start(database_url, tmp_path, "worker", "--once", "--metrics-port", "9999")
        _, err = done.communicate(timeout=BOUND)
        assert done.returncode == 2
        assert "not with --once" in err
