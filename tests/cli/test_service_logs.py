"""Logs a machine can read (issue 23, item 5): every line a service writes to stderr is JSON
with pid, host and version -- start-up and summary lines, uvicorn's and chfw's events alike.

Real processes: `chfw serve` and `chfw worker` as subprocesses (stderr not a terminal: JSON).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from chfw import __version__
from tests.cli.test_health import get, intake, start, until
from tests.cli.test_serve import BOUND
from tests.cli.test_worker_signals import stop
from tests.dsp.delivery.receiver import free_port
from tests.small_dsp import build_dsp


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line of ``text`` as JSON (a line that is not JSON fails the test, shown)."""
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def identified(entry: dict[str, object], pid: int) -> bool:
    return (entry["pid"], entry["host"], entry["version"]) == (
        pid,
        socket.gethostname(),
        __version__,
    )


class TestServiceLogs:
    def test_worker_lines_from_start_to_summary(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        port = free_port()
        worker = start(database_url, tmp_path, "worker", "--metrics-port", str(port))
        # Its monitor answers once the worker's loop runs (and handles SIGTERM).
        until(lambda: get(port, "/healthz").status_code == 200, worker, "running")
        code, output = stop(worker)
        assert code == 0, output
        entries = json_lines(output)
        events = [e["event"] for e in entries]
        assert {"worker_started", "worker_stopping", "delivery_run", "worker_stopped"} <= set(
            events
        )
        assert all(identified(e, worker.pid) for e in entries)
        (summary,) = [e for e in entries if e["event"] == "worker_stopped"]
        assert "delivered 0" in str(summary["message"])

    def test_intake_lines_and_a_failed_login(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        build_dsp(engine)
        process, port = intake(database_url, tmp_path)
        try:
            refused = httpx.post(
                f"http://127.0.0.1:{port}/csp/v1/messages",
                content=b"00",
                headers={"authorization": "Bearer chfw_csp_0123456789abcdef_" + "x" * 43},
                timeout=BOUND,
            )
            assert refused.status_code == 401
            assert get(port, "/healthz").status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=BOUND)
        entries = json_lines(err)
        assert all(identified(e, process.pid) for e in entries)
        (login,) = [e for e in entries if e["event"] == "auth_refused"]
        assert (login["claimed"], login["remote"]) == ("csp 0123456789abcdef", "127.0.0.1")
        assert "x" * 43 not in err
        assert any(e["event"] == "dashboard" for e in entries)  # the start-up line
        assert os.environ.get("CHFW_LOG_FORMAT") != "console"


class TestStartFailure:
    def test_a_refused_start_is_a_json_line_too(self, database_url: str, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
        env.update(CHFW_DATABASE_URL=database_url, CHFW_PORT="70000")
        for command in (["serve"], ["worker"]):
            done = subprocess.run(
                [sys.executable, "-m", "chfw", *command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=BOUND,
                check=False,
            )
            assert done.returncode == 1, done.stderr
            (entry,) = json_lines(done.stderr)
            assert entry["event"] == "start_failed"
            assert entry["level"] == "error"
            assert "setting port = 70000 is out of range" in str(entry["message"])
