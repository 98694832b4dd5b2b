"""`chfw receiver serve` as a real process on 127.0.0.1, for tests of the whole command:
served until healthy (:func:`receiver_process`), or with its stderr read line by line
(:func:`serving`, :func:`run_serve`) for the start-up checks and the logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.supplier.helpers import free_port

VENV_CHFW = Path(sys.executable).parent / "chfw"


@contextmanager
def receiver_process(
    folder: Path,
    trust_pem: bytes,
    *args: str,
    https: dict[str, Any] | None = None,
    database: str | None = None,
) -> Iterator[tuple[str, str]]:
    """Serve on ``database`` (default: a new SQLite file in ``folder``): yields (base URL,
    database URL).

    ``args`` go to the command after the port, trust and database options; with
    ``https`` (httpx options: ``verify``) the server is reached over https (give
    ``--tls-cert``/``--tls-key`` in ``args``).
    """
    trust = folder / "dsp.pem"
    trust.write_bytes(trust_pem)
    database = database or f"sqlite:///{folder / 'supplier.db'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
    command = [str(VENV_CHFW), "receiver", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--trust", str(trust), "--database", database, *args]
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"{'https' if https is not None else 'http'}://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base, https or {})
        yield base, database
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def _wait_healthy(process: subprocess.Popen[bytes], base: str, options: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"chfw receiver serve exited {process.returncode}: {output}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1, **options).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("chfw receiver serve did not become healthy")
        time.sleep(0.1)


# -- the command's stderr, read line by line while it runs (start-up checks, logs) ---------

needs_script = pytest.mark.skipif(not VENV_CHFW.exists(), reason="the chfw script is not installed")
ANNOUNCED = "receiving alerts on"


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHFW_")}
    env["CHFW_LOG_FORMAT"] = "json"
    env.update(extra or {})
    return env


def run_serve(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `chfw receiver serve ARGS` expecting it to stop by itself: (exit code, stderr)."""
    result = subprocess.run(
        [str(VENV_CHFW), "receiver", "serve", *args],
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr


class Running:
    """A started `chfw receiver serve`; ``lines`` grows as it writes to stderr."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def close(self) -> None:
        """After the process ended: the last lines read, the pipe closed."""
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, found: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first stderr line ``found`` accepts, waiting for it (fails if the process ends)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if found(line):
                    return line
            seen = len(self.lines)
            if self.process.poll() is not None:
                time.sleep(0.2)  # the reader's last lines
                if not any(found(line) for line in self.lines):
                    pytest.fail(f"receiver exited {self.process.returncode}:\n{self.text}")
            if time.monotonic() > deadline:
                pytest.fail(f"not seen in {timeout:g} s; stderr so far:\n{self.text}")
            time.sleep(0.05)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines whose event is ``name``."""
        found = []
        for line in self.lines:
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found


@contextmanager
def serving(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    """`chfw receiver serve ARGS` until the block ends, once it has announced itself."""
    process = subprocess.Popen(
        [str(VENV_CHFW), "receiver", "serve", *args],
        cwd=cwd,
        env=_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(process)
    try:
        running.wait_for(lambda line: ANNOUNCED in line, timeout=60)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        running.close()
