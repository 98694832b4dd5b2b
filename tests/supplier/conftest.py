"""Fixtures: a DSP signing identity, and a real receiver on 127.0.0.1 over a fresh database."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
import structlog
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.supplier.helpers import Dsp, Served, free_port


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a CLI test's structlog set-up (it writes to CliRunner's stderr, closed afterwards)."""
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def dsp() -> Dsp:
    """The DSP whose certificate the receiver trusts."""
    return Dsp.create()


@pytest.fixture
def lookups() -> list[DeviceId]:
    """CHs the receiver asked to have their version fetched (N999), in order."""
    return []


@pytest.fixture
def serve(engine: Engine, dsp: Dsp, lookups: list[DeviceId]) -> Iterator[Callable[..., Served]]:
    """Start a receiver over ``engine`` trusting ``dsp``; options go to ReceiverConfig."""
    started: list[Served] = []

    def start(**options: object) -> Served:
        options.setdefault("trust", dsp.trust)
        options.setdefault("on_lookup_needed", lookups.append)
        config = ReceiverConfig(**options)  # type: ignore[arg-type]
        server = Served(create_receiver_app(config, engine)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def receiver(serve: Callable[..., Served]) -> Served:
    """A running receiver with default settings (bundled schemas, any DUIS version, 1 MiB)."""
    return serve()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A non-blocking socket listening on 127.0.0.1, to prove nobody connected to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        sock.setblocking(False)
        yield sock
