"""Structured logs: JSON lines (one event per line) for services, readable text for terminals.

Every event about a hub carries ``device_id``; about an outcome, ``key`` (CH:counter:event);
about an alert, ``response_id``. Secrets (credentials, keys) are never passed to a logger.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO, cast

import structlog

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


def configure_logging(level: str | None = None, *, json: bool | None = None) -> None:
    """Configure structlog once per process; CHFW_LOG_LEVEL and CHFW_LOG_FORMAT override."""
    name = (level or os.environ.get("CHFW_LOG_LEVEL", "info")).lower()
    fmt = os.environ.get("CHFW_LOG_FORMAT")
    as_json = json if json is not None else (fmt != "console" if fmt else not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(name, logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(cast(TextIO, _CurrentStderr())),
        # Not cached: a reconfiguration (tests, CLI commands run in-process) must reach
        # loggers that modules created earlier.
        cache_logger_on_first_use=False,
    )


def cache_loggers() -> None:
    """For a long-running service, configured once: loggers keep their configuration.

    Uncached, every call on a module's logger rebuilds its bound logger (tens of
    microseconds, also for a filtered-out debug line), a cost paid per alert by
    servers that handle thousands a second. Only servers and workers turn this on;
    in-process tools and tests stay reconfigurable.
    """
    structlog.configure(cache_logger_on_first_use=True)
