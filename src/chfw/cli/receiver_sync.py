"""`chfw receiver sync`: catch up from the DSP's firmware feed (gained CHs, missed alerts)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from chfw.cli._backoffice import DatabaseOption, backoffice_engine
from chfw.cli._context import fail, run_guarded
from chfw.cli.receiver_lookups import TOKEN_ENV, DspCertOption, DspKeyOption
from chfw.dsp.store.errors import translated

if TYPE_CHECKING:  # imported when used: `chfw --help` need not load httpx
    from chfw.supplier.feed_sync import FeedClient, SyncStats


def sync(
    dsp_url: Annotated[
        str,
        typer.Option(
            "--dsp-url", help="Base URL of the DSP's intake (serving GET /su/v1/firmware)"
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            "--dsp-token",
            envvar=TOKEN_ENV,
            help="Our Service User's inventory token (`chfw users token` on the DSP); "
            "prefer the environment variable: a command line is visible to other users",
            show_default=False,
        ),
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option(
            "--insecure-http",
            "--dsp-allow-http",
            help="Accept a plain http:// --dsp-url (the token then travels in clear: a local "
            "test DSP only)",
        ),
    ] = False,
    ca_bundle: Annotated[
        str | None,
        typer.Option(
            "--ca-bundle",
            "--dsp-ca-bundle",
            help="CA bundle to verify the DSP (default: system CAs)",
        ),
    ] = None,
    dsp_client_cert: DspCertOption = None,
    dsp_client_key: DspKeyOption = None,
    limit: Annotated[int, typer.Option(help="Entries per page", min=1, max=5000)] = 500,
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help="Read the feed from the beginning, not from the saved cursor (after the DSP "
            "refused it as ahead of its feed); what is filed already is not filed twice",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    database: DatabaseOption = None,
) -> None:
    """Read the DSP's catch-up feed from where the last sync stopped and file what it says.

    CHs this supplier gained come with their current version, missed activations
    with theirs; each is recorded with version_source 'feed' unless the back office
    already holds a newer alert for the CH. Exits 1 if the feed could not be read
    (pages filed before that are kept; the next sync goes on from there).
    """
    from chfw.supplier.feed_sync import sync as run_sync

    client = _client(dsp_url, token, ca_bundle, dsp_client_cert, dsp_client_key, insecure_http)
    eng = backoffice_engine(database)
    try:
        with run_guarded(), translated():
            stats = run_sync(eng, client, limit=limit, from_start=from_start)
    finally:
        client.close()
        if database is not None:
            eng.dispose()
    typer.echo(json.dumps(stats.to_json(), indent=2) if as_json else _summary(stats))


def _client(
    dsp_url: str,
    token: str | None,
    ca_bundle: str | None,
    client_cert: str | None,
    client_key: str | None,
    allow_http: bool,
) -> FeedClient:
    from chfw.supplier.feed_sync import FeedClient

    if not token:
        raise fail(
            f"no DSP inventory token: pass --token or set {TOKEN_ENV} "
            "(the DSP issues it with `chfw users token USER_ID`)"
        )
    with run_guarded():
        return FeedClient(
            dsp_url,
            token,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            allow_http=allow_http,
        )


def _summary(stats: SyncStats) -> str:
    return (
        f"read {stats.entries} feed entr{'y' if stats.entries == 1 else 'ies'} in "
        f"{stats.pages} page(s): {stats.applied} set a CH's version, {stats.gained} for CHs "
        f"gained, {stats.unknown} without a version at the DSP"
    )
