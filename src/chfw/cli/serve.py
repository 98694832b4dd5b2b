"""`chfw serve`: the intake API for CSPs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chfw.cli._context import engine, run_guarded, settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default: settings.host)")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: settings.port)")
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Server certificate chain (PEM); enables HTTPS")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM)")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(help="CA(s) of the CSPs' client certificates (PEM): mutual TLS required"),
    ] = None,
) -> None:
    """Serve the CSP intake API (POST /csp/v1/messages) until interrupted.

    SIGTERM or Ctrl-C stop it gracefully: requests in progress are answered
    first. Slow clients are cut off after server_request_timeout_seconds.
    """
    from chfw.dsp.intake import create_app
    from chfw.dsp.runtime import build_service, expiry_warning, load_signer
    from chfw.dsp.schema_check import check_user_schemas
    from chfw.shared.forwarded import TrustedProxies
    from chfw.shared.logs import notice
    from chfw.shared.serving import ClientLimits, tls_options
    from chfw.shared.serving import serve as run_server
    from chfw.shared.web.auth import announce, base_url

    with run_guarded(service=True):
        config = settings()
        tls = tls_options(tls_cert, tls_key, tls_client_ca)
        proxies = TrustedProxies.parse(config.trusted_proxies)
        signer = load_signer(config)  # refused when its certificate is expired or not yet valid
        warning = expiry_warning(signer, config.signing_cert)
        if warning:
            notice("signing_certificate_expires_soon", warning, level="warning")
        check_user_schemas(config, engine())  # every user's DUIS version has a schema
        app = create_app(config, build_service(config, engine(), signer=signer))
    announce(
        app.state.dashboard_auth,
        base_url(host or config.host, port or config.port, tls=bool(tls)),
        how_to_set="dashboard_token (CHFW_DASHBOARD_TOKEN)",
    )
    run_server(
        app,
        host or config.host,
        port or config.port,
        ClientLimits.from_settings(config),
        tls,
        proxies,
    )
