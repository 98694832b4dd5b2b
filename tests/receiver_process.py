"""`chfw receiver serve` as a real process on 127.0.0.1, for tests of the whole command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.supplier.helpers import free_port

VENV_CHFW = Path(sys.executable).parent / "chfw"


@contextmanager
def receiver_process(
    folder: Path, trust_pem: bytes, *args: str, https: dict[str, Any] | None = None
) -> Iterator[tuple[str, str]]:
    """Serve on a new SQLite file in ``folder``: yields (base URL, database URL).

    ``args`` go to the command after the port, trust and database options; with
    ``https`` (httpx options: ``verify``) the server is reached over https (give
    ``--tls-cert``/``--tls-key`` in ``args``).
    """
    trust = folder / "dsp.pem"
    trust.write_bytes(trust_pem)
    database = f"sqlite:///{folder / 'supplier.db'}"
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
