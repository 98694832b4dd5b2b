"""`chfw receiver lookups`: fetch from the DSP the versions N999 alerts could not carry."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.engine import Engine

from chfw.cli._backoffice import DatabaseOption, backoffice_engine
from chfw.cli._context import fail, run_guarded
from chfw.dsp.store.errors import translated

if TYPE_CHECKING:  # imported when used: `chfw --help` need not load httpx and FastAPI
    from chfw.supplier.lookup import InventoryClient, LookupStats, LookupWorker

TOKEN_ENV = "CHFW_RECEIVER_DSP_TOKEN"  # noqa: S105 - a variable name, not a secret

DspUrlOption = Annotated[
    str,
    typer.Option(
        "--dsp-url",
        help="Base URL of the DSP's intake service (serving GET /su/v1/inventory/{device_id})",
    ),
]
DspTokenOption = Annotated[
    str | None,
    typer.Option(
        "--dsp-token",
        envvar=TOKEN_ENV,
        help="Our Service User's inventory token (from `chfw users token` on the DSP); "
        "prefer the environment variable: a command line is visible to other users",
        show_default=False,
    ),
]
ServeDspUrlOption = Annotated[
    str | None,
    typer.Option(
        "--dsp-url",
        help="Base URL of the DSP's intake service: fetch the firmware versions N999 alerts "
        "lack from its GET /su/v1/inventory/{device_id} (needs --dsp-token)",
    ),
]
DspCaOption = Annotated[
    str | None,
    typer.Option("--dsp-ca-bundle", help="CA bundle to verify the DSP (default: system CAs)"),
]
DspCertOption = Annotated[
    str | None,
    typer.Option("--dsp-client-cert", help="Client certificate to present to the DSP (mTLS)"),
]
DspKeyOption = Annotated[str | None, typer.Option("--dsp-client-key", help="Its private key")]
DspAllowHttpOption = Annotated[
    bool,
    typer.Option(
        "--dsp-allow-http",
        help="Accept an http:// --dsp-url (the token then travels in clear: a test set-up on "
        "a trusted network only)",
    ),
]


def _check_scheme(dsp_url: str, allow_http: bool) -> None:
    if dsp_url.lower().startswith("http://") and not allow_http:
        raise fail(
            f"--dsp-url {dsp_url} is plain http: the inventory token would travel in clear; "
            "use the DSP's https:// URL (or --dsp-allow-http for a test set-up)"
        )


def make_client(
    dsp_url: str,
    dsp_token: str | None,
    ca_bundle: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    *,
    allow_http: bool = False,
) -> InventoryClient:
    """The DSP inventory client from command-line options; a clean error when one is missing
    or the URL is plain http without ``allow_http``."""
    from chfw.supplier.lookup import InventoryClient

    _check_scheme(dsp_url, allow_http)
    if not dsp_token:
        raise fail(
            f"no DSP inventory token: pass --dsp-token or set {TOKEN_ENV} "
            "(the DSP issues it with `chfw users token USER_ID`)"
        )
    with run_guarded():
        return InventoryClient(
            dsp_url,
            dsp_token,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
        )


def lookup_worker(
    engine: Engine,
    dsp_url: str | None,
    dsp_token: str | None,
    ca_bundle: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    *,
    allow_http: bool = False,
) -> LookupWorker | None:
    """The N999 follow-up for `chfw receiver serve`, or None (and a note) without --dsp-url.

    The DSP is asked once now: a refused token or a TLS mistake ends the command;
    a DSP that cannot be reached is a warning (look-ups wait for it).
    """
    from chfw.supplier.dsp_answers import check_dsp
    from chfw.supplier.dsp_client import DspClient
    from chfw.supplier.lookup import LookupWorker

    if dsp_url is None:
        typer.echo(
            "note: no --dsp-url, so the firmware versions of N999 alerts are not fetched "
            "(later: `chfw receiver lookups --once --dsp-url URL`)",
            err=True,
        )
        return None
    client = make_client(
        dsp_url, dsp_token, ca_bundle, client_cert, client_key, allow_http=allow_http
    )
    with run_guarded():
        probe = DspClient(
            dsp_url,
            dsp_token or "",
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            allow_http=allow_http,
            timeout=10.0,
        )
        try:
            warning = check_dsp(probe)
        finally:
            probe.close()
    typer.echo(
        f"DSP inventory at {client.base_url}: "
        + (f"warning: {warning}" if warning else "our token is accepted"),
        err=True,
    )
    return LookupWorker(engine, client)


def lookups(
    dsp_url: DspUrlOption,
    dsp_token: DspTokenOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Try every pending CH once, then exit")
    ] = False,
    sweep_seconds: Annotated[
        float, typer.Option(help="Without --once: seconds between sweeps", min=0.1)
    ] = 60.0,
    dsp_ca_bundle: DspCaOption = None,
    dsp_client_cert: DspCertOption = None,
    dsp_client_key: DspKeyOption = None,
    dsp_allow_http: DspAllowHttpOption = False,
    database: DatabaseOption = None,
) -> None:
    """Fetch the firmware versions of CHs whose activation came as an N999 (version unknown).

    `chfw receiver serve --dsp-url ...` does this by itself; this command is for a
    receiver run without it, or to catch up by hand. With --once the exit code is 1
    when some lookups failed (they stay pending and are retried by the next run).
    """
    from chfw.supplier.lookup import LookupWorker, count_pending

    client = make_client(
        dsp_url,
        dsp_token,
        dsp_ca_bundle,
        dsp_client_cert,
        dsp_client_key,
        allow_http=dsp_allow_http,
    )
    eng = backoffice_engine(database)
    worker = LookupWorker(eng, client, sweep_seconds=sweep_seconds)
    with run_guarded(), translated():
        stats = asyncio.run(_once(worker) if once else _forever(worker))
        with eng.connect() as conn:
            waiting = count_pending(conn)
    if database is not None:
        eng.dispose()
    not_tried = f", {stats.waiting} not tried" if stats.waiting else ""
    typer.echo(
        f"fetched {stats.fetched} version(s), {stats.failed} lookup(s) failed{not_tried}; "
        f"{waiting} CH(s) still waiting for a version"
    )
    if worker.dsp_problem:
        typer.echo(f"the DSP failed as a whole, so look-ups wait for it: {worker.dsp_problem}")
    if once and (stats.failed or stats.waiting):
        raise typer.Exit(1)


async def _once(worker: LookupWorker) -> LookupStats:
    async with worker.client:
        return await worker.run_once()


async def _forever(worker: LookupWorker) -> LookupStats:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    typer.echo(f"chfw receiver lookups: following up N999s with {worker.client.base_url}", err=True)
    async with worker.client:
        await worker.run()
    return worker.totals
