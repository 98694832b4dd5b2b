"""`chfw receiver`: the supplier's alert endpoint and what it received.

Every command takes ``--database URL``; the default is the configured
``database_url`` (``CHFW_DATABASE_URL``), the supplier's own database.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chfw.cli._backoffice import backoffice_transaction
from chfw.cli._context import fail, run_guarded, settings
from chfw.cli._output import console
from chfw.cli.readiness import ready
from chfw.cli.receiver_hubs import app as hubs_app
from chfw.cli.receiver_lookups import (
    DspAllowHttpOption,
    DspCaOption,
    DspCertOption,
    DspKeyOption,
    DspTokenOption,
    ServeDspUrlOption,
    lookup_worker,
    lookups,
)
from chfw.cli.receiver_sync import sync
from chfw.core.domain import DeviceId, DuisVersion

app = typer.Typer(
    help="The supplier side: receive signed DUIS alerts and query the back office.",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", help="Database URL (default: settings database_url)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _database_url(database: str | None) -> str:
    return database or settings().database_url


@app.command()
def serve(
    trust: Annotated[
        list[Path],
        typer.Option(
            "--trust",
            help="PEM certificate(s) of the DSP whose signatures are accepted (repeatable)",
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8065,
    database: DatabaseOption = None,
    duis_version: Annotated[
        str | None,
        typer.Option(help="This user's DUIS version, e.g. 5.1 (default: each alert's own)"),
    ] = None,
    path: Annotated[str, typer.Option(help="Path the DSP posts alerts to")] = "/",
    max_bytes: Annotated[int, typer.Option(help="Largest body accepted (bytes)")] = 1024 * 1024,
    check_threads: Annotated[
        int, typer.Option(help="Threads that check alerts (off the event loop)")
    ] = 2,
    check_seconds: Annotated[
        float, typer.Option(help="Longest an alert's check may take before a 503 (seconds)")
    ] = 10.0,
    xsd_dir: Annotated[
        Path | None,
        typer.Option(
            help="Official DUIS XSDs (<dir>/<version>/); default: settings duis_xsd_dir, else "
            "chfw's bundled subset"
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Server certificate chain (PEM); enables HTTPS")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM)")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(help="CA(s) of the DSP's client certificate (PEM): mutual TLS required"),
    ] = None,
    dsp_url: ServeDspUrlOption = None,
    dsp_token: DspTokenOption = None,
    dsp_ca_bundle: DspCaOption = None,
    dsp_client_cert: DspCertOption = None,
    dsp_client_key: DspKeyOption = None,
    dsp_allow_http: DspAllowHttpOption = False,
    dashboard_token: Annotated[
        str | None,
        typer.Option(
            envvar="CHFW_RECEIVER_DASHBOARD_TOKEN",
            help="Token to sign in to the dashboard at /dashboard (16+ characters; prefer the "
            "environment variable). Default: one made at start, shown on a terminal",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the alert endpoint until interrupted (plain HTTP without --tls-cert: local use only).

    Before anything is announced: the TLS certificate and key, each trusted signer
    (printed; an expired one refused), the DSP with --dsp-url (https, its CA, our
    token), the database (migrated) and the port (bound) are checked; each problem
    is one line naming the file or port and the fix. Each POST is size-checked,
    parsed safely, verified against --trust, validated, recorded, and answered 204
    (400/413 otherwise).
    """
    from chfw.cli.receiver_startup import handshake_watch, trusted_signers
    from chfw.shared.db.engine import create_engine_for
    from chfw.shared.forwarded import TrustedProxies
    from chfw.shared.serving import ClientLimits, bind, tls_options
    from chfw.shared.serving import serve as serve_app
    from chfw.shared.throttle import FailureThrottle
    from chfw.shared.web.auth import announce, base_url
    from chfw.supplier.app import create_receiver_app
    from chfw.supplier.migrate import upgrade
    from chfw.supplier.pipeline import ReceiverConfig
    from chfw.supplier.validation import AlertSchemas

    with run_guarded():
        tls = tls_options(tls_cert, tls_key, tls_client_ca)
        trust_store = trusted_signers(trust)
        version = DuisVersion.parse(duis_version) if duis_version else None
        directory = xsd_dir or (Path(d) if (d := settings().duis_xsd_dir) else None)
        schemas = AlertSchemas.official(directory) if directory else AlertSchemas.bundled()
        if version is not None:
            schemas.preload(version)
        elif schemas.envelope is not None:  # bundled: milliseconds to compile every version
            for pair in DuisVersion.SUPPORTED:
                schemas.preload(DuisVersion(*pair))
        config = ReceiverConfig(
            trust=trust_store,
            schemas=schemas,
            duis_version=version,
            max_bytes=max_bytes,
            path=path,
            check_threads=check_threads,
            check_seconds=check_seconds,
        )
        proxies = TrustedProxies.parse(settings().trusted_proxies)
        url = _database_url(database)
        upgrade(url)
        engine = create_engine_for(url)
        follow_up = lookup_worker(
            engine,
            dsp_url,
            dsp_token,
            dsp_ca_bundle,
            dsp_client_cert,
            dsp_client_key,
            allow_http=dsp_allow_http,
        )
        if follow_up is not None:  # N999s: fetch their versions from the DSP at once
            config = dataclasses.replace(config, on_lookup_needed=follow_up.notify)
        sock = bind(host, port)  # before announcing: a port in use is one line, not a promise
    typer.echo(
        f"receiving alerts on {'https' if tls else 'http'}://{host}:{port}{path} "
        f"({len(config.trust)} trusted signer(s), schemas: {schemas.source})",
        err=True,
    )
    with run_guarded():
        dsp = None
        if dsp_url is not None and dsp_token:  # the dashboard's DCC campaigns page
            from chfw.supplier.dsp_client import DspClient

            dsp = DspClient(
                dsp_url,
                dsp_token,
                ca_bundle=dsp_ca_bundle,
                client_cert=dsp_client_cert,
                client_key=dsp_client_key,
                allow_http=dsp_allow_http,
                timeout=10.0,
            )
        app_ = create_receiver_app(config, engine, dashboard_token=dashboard_token, dsp=dsp)
        app_.state.dashboard_auth.throttle = FailureThrottle.from_settings(settings())
    announce(
        app_.state.dashboard_auth,
        base_url(host, port, tls=bool(tls)),
        how_to_set="--dashboard-token or CHFW_RECEIVER_DASHBOARD_TOKEN",
    )
    if follow_up is not None:
        from chfw.supplier.lookup import run_with

        run_with(app_, follow_up)
    try:
        serve_app(
            app_,
            host,
            port,
            ClientLimits.from_settings(settings()),
            tls,
            proxies,
            sock=sock,
            handshakes=handshake_watch(app_),
        )
    finally:
        engine.dispose()


@app.command()
def hub(
    ch_id: Annotated[str, typer.Argument(help="The CH's Device ID, e.g. 00-1D-A1-00-00-00-00-42")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """A CH's active firmware as the received alerts say, and one history entry per alert."""
    from chfw.supplier import backoffice, estate

    with run_guarded():
        device = DeviceId.parse(ch_id)
    with backoffice_transaction(database) as conn:
        view = backoffice.hub_view(conn, device)
        member = estate.membership(conn, device) if view is None else None
    if view is None:
        known = (
            ""
            if member is None
            else f" (it is in the estate{f', label {member[0]!r}' if member[0] else ''}, "
            f"imported {member[1]:%Y-%m-%d}: its version is unknown)"
        )
        raise fail(f"no firmware alert has been received for CH {device}{known}")
    data = view.to_json()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    version = data["active_firmware_version"] or "unknown"
    pending = " (version lookup pending)" if data["version_lookup_pending"] else ""
    typer.echo(f"CH {data['device_id']}: firmware {version}{pending} since {data['changed_at']}")
    table = Table("alert time", "code", "version", "source", "applied", "response id")
    for entry in data["history"]:
        table.add_row(
            entry["alert_time"],
            entry["alert_code"],
            entry["firmware_version"] or "-",
            entry["version_source"],
            "yes" if entry["applied"] else "no (older)",
            entry["response_id"],
        )
    console().print(table)


@app.command()
def alerts(
    code: Annotated[
        str | None, typer.Option("--code", help="Only this DCC alert code, e.g. N64")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """The alerts received (every DCC alert code), newest first."""
    from chfw.supplier import backoffice

    with backoffice_transaction(database) as conn:
        rows = backoffice.list_alerts(conn, alert_code=code, limit=limit)
    if as_json:
        typer.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    table = Table(
        "received", "code", "device", "version", "source", "alert time", "response id", "replays"
    )
    for row in rows:
        table.add_row(
            row.received_at.isoformat(),
            row.alert_code,
            row.device_id or "-",
            row.known_version or ("?" if row.alert_code == "N999" else "-"),
            row.version_source or "-",
            row.alert_time.isoformat(),
            row.response_id,
            str(row.duplicates),
        )
    console().print(table)


@app.command()
def document(
    response_id: Annotated[str, typer.Argument(help="The alert's ResponseID")],
    database: DatabaseOption = None,
) -> None:
    """Write one received alert's signed document, exactly as it arrived, to stdout."""
    from chfw.supplier import backoffice

    with backoffice_transaction(database) as conn:
        body = backoffice.alert_document(conn, response_id)
    if body is None:
        raise fail(f"no alert with ResponseID {response_id!r} has been received")
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


@app.command()
def rejections(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """The POSTs the endpoint refused (400/413), newest first, with the reason."""
    from chfw.supplier import backoffice

    with backoffice_transaction(database) as conn:
        rows = backoffice.list_rejections(conn, limit=limit)
    if as_json:
        typer.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    table = Table("at", "status", "remote", "bytes", "reason")
    for row in rows:
        table.add_row(
            row.at.isoformat(), str(row.status_code), row.remote or "-", str(row.size), row.reason
        )
    console().print(table)


@app.command()
def upgrade(database: DatabaseOption = None) -> None:
    """Create or upgrade the back-office schema (its own chain; `receiver serve` runs it too)."""
    from chfw.dsp.store.errors import translated
    from chfw.shared.db.engine import create_engine_for
    from chfw.supplier import migrate

    with run_guarded():
        engine = create_engine_for(_database_url(database))
    try:
        with run_guarded(), translated():
            before = migrate.current_revision(engine)
            after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"back office already at revision {after}")
    else:
        typer.echo(f"back office upgraded from {before or 'empty'} to revision {after}")


app.command("ready")(ready)
app.command("lookups")(lookups)
app.command("sync")(sync)
app.add_typer(hubs_app, name="hubs")
