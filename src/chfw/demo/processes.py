"""Start chfw services as child processes, wait for them, and always stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from chfw.exceptions import ChfwError


class ServiceStartError(ChfwError):
    """A child service did not come up; the message names its log file."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def chfw_command() -> list[str]:
    """Run the CLI of this very installation, whatever is on PATH."""
    return [sys.executable, "-m", "chfw"]


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_url: str | None = None


@dataclass
class ServiceGroup(AbstractContextManager["ServiceGroup"]):
    """Children started here are terminated (SIGTERM, then SIGKILL) on exit, whatever happens."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    services: list[Service] = field(default_factory=list)

    def start(
        self,
        name: str,
        args: list[str],
        health_url: str | None = None,
        command: list[str] | None = None,
    ) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [*(command or chfw_command()), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        service = Service(name, process, log_path, health_url)
        self.services.append(service)
        return service

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            for service in self.services:
                while service.health_url:
                    if service.process.poll() is not None:
                        raise ServiceStartError(
                            f"{service.name} exited with code {service.process.returncode}; "
                            f"see {service.log_path}:\n{_tail(service.log_path)}"
                        )
                    try:
                        if client.get(service.health_url).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise ServiceStartError(
                            f"{service.name} did not answer {service.health_url} within "
                            f"{timeout:.0f}s; see {service.log_path}"
                        )
                    time.sleep(0.1)

    def check_alive(self) -> None:
        for service in self.services:
            if service.process.poll() is not None:
                raise ServiceStartError(
                    f"{service.name} stopped unexpectedly (code {service.process.returncode}); "
                    f"see {service.log_path}:\n{_tail(service.log_path)}"
                )

    def stop_all(self, grace: float = 10.0) -> None:
        for service in self.services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for service in self.services:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                service.process.wait(remaining)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait()
        self.services.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
