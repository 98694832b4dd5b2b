"""`chfw serve`: refuses to start on an open signing key or half a TLS set-up; SIGTERM drains."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer
from sqlalchemy.engine import Engine

from chfw.cli.serve import serve
from chfw.dsp.store import csps
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.delivery.receiver import free_port
from tests.dsp.intake.helpers import stored, valid_message
from tests.dsp.intake.server import read_answer
from tests.small_dsp import CERT_PEM, KEY_PEM, build_dsp

app = typer.Typer()
app.command()(serve)
BOUND = 60  # seconds: a bound for a hung process, not a timing assertion


def signing_files(folder: Path, key_mode: int = 0o600) -> dict[str, str]:
    key, cert = folder / "dsp.key", folder / "dsp.pem"
    key.write_bytes(KEY_PEM)
    key.chmod(key_mode)
    cert.write_bytes(CERT_PEM)
    return {"CHFW_SIGNING_KEY": str(key), "CHFW_SIGNING_CERT": str(cert)}


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


class TestRefusesToStart:
    """Set-up mistakes stop `chfw serve` before it listens, with a message saying what to fix."""

    def test_signing_key_readable_by_others(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in signing_files(tmp_path, 0o644).items():
            monkeypatch.setenv(name, value)
        result = cli.invoke(app)
        assert result.exit_code == 1
        assert "chmod 600" in result.output
        assert "0644" in result.output

    def test_tls_key_without_certificate(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in signing_files(tmp_path).items():
            monkeypatch.setenv(name, value)
        result = cli.invoke(app, "--tls-key", str(tmp_path / "dsp.key"))
        assert result.exit_code == 1
        assert "need --tls-cert" in result.output

    def test_unusable_client_ca(
        self, cli: CliDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in signing_files(tmp_path).items():
            monkeypatch.setenv(name, value)
        result = cli.invoke(
            app,
            "--tls-cert",
            str(tmp_path / "dsp.pem"),
            "--tls-key",
            str(tmp_path / "dsp.key"),
            "--tls-client-ca",
            str(tmp_path / "missing-ca.pem"),
        )
        assert result.exit_code == 1
        assert "missing-ca.pem" in result.output


@dataclass
class Served:
    """A running `python -m chfw serve` subprocess and what a CSP needs to post to it."""

    process: subprocess.Popen[str]
    port: int
    credential: str


@pytest.fixture
def served(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[Served]:
    """`python -m chfw serve` in a subprocess on a free port, over the test database."""
    csps.clear_cache()
    dsp = build_dsp(engine)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
    env.update(signing_files(tmp_path), CHFW_DATABASE_URL=database_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "chfw", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + BOUND
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"chfw serve did not start: {process.communicate()[0][-2000:]}")
            time.sleep(0.1)
        yield Served(process, port, dsp.credential)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        csps.clear_cache()


class TestSigterm:
    """SIGTERM stops new connections but answers the request in progress before exiting."""

    def test_request_in_progress_is_answered(self, served: Served, engine: Engine) -> None:
        body = valid_message()
        head = (
            b"POST /csp/v1/messages HTTP/1.1\r\nHost: intake\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Authorization: Bearer " + served.credential.encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        with socket.create_connection(("127.0.0.1", served.port)) as client:
            client.sendall(head + body[:10])
            served.process.send_signal(signal.SIGTERM)
            _wait_until_refused(served.port)  # shutting down: no new connections
            client.sendall(body[10:])
            answer = read_answer(client)
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"processed"' in answer
        assert stored(engine)["firmware_history"] == 1
        # uvicorn ends the process with the signal it caught, once drained (supervisors such as
        # systemd count that as a clean stop).
        assert served.process.wait(timeout=BOUND) == -signal.SIGTERM


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _wait_until_refused(port: int) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError("the server kept accepting connections after SIGTERM")
