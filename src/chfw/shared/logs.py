"""Structured logs: JSON lines (one event per line) for services, readable text for terminals.

Every event about a hub carries ``device_id``; about an outcome, ``key`` (CH:counter:event);
about an alert, ``response_id``. Secrets (credentials, keys) are never passed to a logger.

In JSON mode every line on standard error is JSON and carries ``pid``, ``host`` and
``version``: structlog's events, the standard library's (uvicorn, Alembic: through the same
renderer) and a service's start-up and summary lines (:func:`notice`, which prints plain
text for a person at a terminal instead).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, WrappedLogger

from chfw import __version__

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (tools and tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_HOST = socket.gethostname()
_json_mode = False


def add_process(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """``pid``, ``host`` and ``version`` on every line (which process wrote it, on which
    machine, running which chfw), without overriding an event's own fields."""
    event.setdefault("pid", os.getpid())
    event.setdefault("host", _HOST)
    event.setdefault("version", __version__)
    return event


def json_mode() -> bool:
    """Whether the logs are JSON lines: :func:`configure_logging` chose JSON, and structlog
    still has that configuration (an in-process tool or test may have reset it since)."""
    return _json_mode and structlog.is_configured()


def notice(event: str, text: str, *, level: str = "info", **fields: Any) -> None:
    """A line for the operator from a service (start-up, a summary): one JSON event with
    ``message`` in JSON mode, else ``text`` as it is, on standard error."""
    if json_mode():
        getattr(structlog.get_logger("chfw"), level)(event, message=text, **fields)
    else:
        print(text, file=sys.stderr, flush=True)


class _StdlibToStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's records, rendered like structlog's, on the current stderr."""

    def __init__(self) -> None:
        super().__init__(cast(TextIO, _CurrentStderr()))


def configure_logging(level: str | None = None, *, json: bool | None = None) -> None:
    """Configure structlog once per process; CHFW_LOG_LEVEL and CHFW_LOG_FORMAT override."""
    global _json_mode
    name = (level or os.environ.get("CHFW_LOG_LEVEL", "info")).lower()
    fmt = os.environ.get("CHFW_LOG_FORMAT")
    as_json = json if json is not None else (fmt != "console" if fmt else not sys.stderr.isatty())
    _json_mode = as_json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        shared.append(add_process)
    _route_stdlib(shared, renderer, _LEVELS.get(name, logging.INFO))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.dict_tracebacks if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(name, logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(cast(TextIO, _CurrentStderr())),
        # Not cached: a reconfiguration (tests, CLI commands run in-process) must reach
        # loggers that modules created earlier.
        cache_logger_on_first_use=False,
    )


def _route_stdlib(
    shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor, level: int
) -> None:
    """The standard library's loggers (uvicorn, Alembic, ...) through the same renderer, so
    that JSON logs hold JSON only; replaces a handler an earlier call installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StdlibToStderr)]:
        root.removeHandler(handler)
    handler = _StdlibToStderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root.addHandler(handler)
    # Libraries' info chatter (httpx's every request) stays out, as without a handler.
    root.setLevel(max(level, logging.WARNING))


def cache_loggers() -> None:
    """For a long-running service, configured once: loggers keep their configuration.

    Uncached, every call on a module's logger rebuilds its bound logger (tens of
    microseconds, also for a filtered-out debug line), a cost paid per alert by
    servers that handle thousands a second. Only servers and workers turn this on;
    in-process tools and tests stay reconfigurable.
    """
    structlog.configure(cache_logger_on_first_use=True)
