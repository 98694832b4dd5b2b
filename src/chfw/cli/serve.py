"""`chfw serve`: the intake API for CSPs."""

from __future__ import annotations

from typing import Annotated

import typer

from chfw.cli._context import engine, run_guarded, settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default: settings.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port)")] = None,
) -> None:
    """Serve the CSP intake API (POST /csp/v1/messages) until interrupted."""
    import uvicorn

    from chfw.intake import create_app
    from chfw.runtime import build_service

    with run_guarded():
        config = settings()
        app = create_app(config, build_service(config, engine()))
    uvicorn.run(
        app,
        host=host or config.host,
        port=port or config.port,
        log_level="warning",
        access_log=False,
    )
