"""`chfw receiver serve` as a process: each start-up check names the file or port and the fix,
failed TLS handshakes leave a trace, and N999 look-ups share one back-off when the DSP fails."""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request

from chfw.core.domain import DeviceId
from chfw.core.signing import create_development_identity
from chfw.shared.db.engine import create_engine_for
from chfw.supplier import backoffice
from tests.live import running
from tests.pki import Pki
from tests.receiver_process import ANNOUNCED, needs_script, run_serve, serving
from tests.supplier.helpers import Dsp, free_port
from tests.supplier.recorded import device

pytestmark = needs_script

DSP = Dsp.create("Startup test DSP")
TOKEN = "chfw_su_startup_test"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def trust(tmp_path: Path) -> Path:
    path = tmp_path / "dsp.pem"
    path.write_bytes(DSP.cert_pem)
    return path


def base_args(tmp_path: Path, trust: Path, port: int | None = None) -> list[str]:
    return [
        "--port",
        str(port or free_port()),
        "--trust",
        str(trust),
        "--database",
        f"sqlite:///{tmp_path / 'supplier.db'}",
    ]


def refused(args: list[str], cwd: Path) -> str:
    """Run serve expecting it to refuse to start: its stderr, with no announcement."""
    code, stderr = run_serve(args, cwd)
    assert code == 1, stderr
    assert ANNOUNCED not in stderr
    return stderr


class TestServerCertificate:
    """--tls-cert/--tls-key: each mistake is refused with the file and the fix."""

    def test_expired(self, tmp_path: Path, trust: Path) -> None:
        pki = Pki.create(
            tmp_path, server_validity=(NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1))
        )
        tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
        stderr = refused([*base_args(tmp_path, trust), *tls], tmp_path)
        assert f"TLS certificate {pki.server_cert} (CN=server) expired on" in stderr
        assert "renew it" in stderr

    def test_not_yet_valid(self, tmp_path: Path, trust: Path) -> None:
        pki = Pki.create(
            tmp_path, server_validity=(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=30))
        )
        tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
        stderr = refused([*base_args(tmp_path, trust), *tls], tmp_path)
        assert f"TLS certificate {pki.server_cert} (CN=server) is not valid before" in stderr

    def test_certificate_and_key_swapped(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        tls = ["--tls-cert", str(pki.server_key), "--tls-key", str(pki.server_cert)]
        stderr = refused([*base_args(tmp_path, trust), *tls], tmp_path)
        assert f"TLS certificate file {pki.server_key} holds a private key" in stderr
        assert "are --tls-cert and --tls-key swapped?" in stderr
        assert "PEM lib" not in stderr

    def test_key_left_out(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        stderr = refused(
            [*base_args(tmp_path, trust), "--tls-cert", str(pki.server_cert)], tmp_path
        )
        assert f"TLS certificate file {pki.server_cert} holds no private key" in stderr
        assert "--tls-key" in stderr

    def test_key_of_another_certificate(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)]
        stderr = refused([*base_args(tmp_path, trust), *tls], tmp_path)
        assert (
            f"TLS key file {pki.client_key} does not belong to certificate {pki.server_cert}"
            in stderr
        )


def openssl_serial(path: Path) -> str:
    """What `openssl x509 -noout -serial` prints after 'serial='."""
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-serial", "-in", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().removeprefix("serial=")


class TestTrustedSigners:
    """Each trusted signer is printed (subject, serial as openssl shows it, validity)."""

    def test_each_signer_is_named(self, tmp_path: Path) -> None:
        other = Dsp.create("Next DSP signer")
        first, second = tmp_path / "dsp.pem", tmp_path / "next.pem"
        first.write_bytes(DSP.cert_pem)
        second.write_bytes(other.cert_pem)
        args = [*base_args(tmp_path, first), "--trust", str(second)]
        with serving(args, tmp_path) as receiver:
            lines = [line for line in receiver.lines if line.startswith("trusted signer:")]
        assert len(lines) == 2
        for path, name, line in (
            (first, "Startup test DSP", lines[0]),
            (second, "Next DSP signer", lines[1]),
        ):
            assert f"CN={name}" in line
            assert f"serial={openssl_serial(path)}" in line
            assert re.search(r"valid \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d{4}-", line), line
            assert f"[{path}]" in line

    def test_an_expired_signer_is_refused(self, tmp_path: Path) -> None:
        _, cert = create_development_identity(
            "Old DSP signer", now=NOW - dt.timedelta(days=10), validity=dt.timedelta(days=1)
        )
        path = tmp_path / "old.pem"
        path.write_bytes(cert)
        stderr = refused(base_args(tmp_path, path), tmp_path)
        assert "trusted signer CN=Old DSP signer (serial=" in stderr
        assert f"in {path} expired on" in stderr
        assert "get the DSP's current signing certificate" in stderr

    def test_a_refused_alert_names_the_serial_in_hex_too(self, tmp_path: Path, trust: Path) -> None:
        stranger = Dsp.create("Unknown DSP")
        (tmp_path / "stranger.pem").write_bytes(stranger.cert_pem)
        port = free_port()
        with serving(base_args(tmp_path, trust, port), tmp_path):
            answer = httpx.post(
                f"http://127.0.0.1:{port}/",
                content=stranger.n64(),
                headers={"content-type": "application/xml"},
            )
        assert answer.status_code == 400
        serial = stranger.signer.certificate.serial_number
        hex_serial = openssl_serial(tmp_path / "stranger.pem")
        assert f"serial {serial} (hex {hex_serial})" in answer.text


class TestListening:
    """The port is bound before anything is announced; a port in use is one line."""

    def test_port_in_use(self, tmp_path: Path, trust: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            stderr = refused(base_args(tmp_path, trust, port), tmp_path)
        assert f"error: port {port} on 127.0.0.1 is already in use" in stderr
        assert "choose another --port" in stderr
        assert "Traceback" not in stderr
        assert len([line for line in stderr.splitlines() if line.startswith("error:")]) == 1


# -- the DSP's inventory, for the start-up check and the N999 look-ups -----------------------


@dataclass
class Inventory:
    """A stand-in for the DSP's inventory endpoint: refuses every token while ``refusing``."""

    versions: dict[str, str] = field(default_factory=dict)
    refusing: bool = False
    answers: list[int] = field(default_factory=list)

    def app(self) -> FastAPI:
        api = FastAPI()
        api.state.inventory = self
        api.add_api_route("/su/v1/inventory/{device_id}", read_inventory)
        return api


def read_inventory(device_id: str, request: Request) -> dict[str, object]:
    inventory: Inventory = request.app.state.inventory
    status = 200
    if inventory.refusing or request.headers.get("authorization") != f"Bearer {TOKEN}":
        status = 401
    elif device_id not in inventory.versions:
        status = 404
    inventory.answers.append(status)
    if status != 200:
        raise HTTPException(status)
    return {"device_id": device_id, "firmware_version": inventory.versions[device_id]}


@contextmanager
def https_dsp(inventory: Inventory, pki: Pki, client_ca: Path | None = None) -> Iterator[str]:
    """The inventory over https; with ``client_ca``, clients need a certificate from it."""
    port = free_port()
    mtls = {"ssl_ca_certs": str(client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED} if client_ca else {}
    config = uvicorn.Config(
        inventory.app(),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        **mtls,
    )
    with running(config):
        yield f"https://127.0.0.1:{port}"


def dsp_args(url: str, pki: Pki | None = None) -> list[str]:
    return ["--dsp-url", url, *(["--dsp-ca-bundle", str(pki.ca)] if pki else [])]


class TestDspAtStart:
    """With --dsp-url, the URL's scheme, the DSP's certificate and our token are checked."""

    def test_plain_http_is_refused(self, tmp_path: Path, trust: Path) -> None:
        stderr = refused(
            [*base_args(tmp_path, trust), *dsp_args("http://127.0.0.1:9"), "--dsp-token", TOKEN],
            tmp_path,
        )
        assert "token would travel in clear" in stderr
        assert "--dsp-allow-http" in stderr

    def test_refused_token(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        with https_dsp(Inventory(), pki) as url:
            stderr = refused(
                [*base_args(tmp_path, trust), *dsp_args(url, pki), "--dsp-token", "wrong"],
                tmp_path,
            )
        assert "the DSP refused our token (401)" in stderr
        assert "chfw users token" in stderr

    def test_untrusted_dsp_certificate(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        with https_dsp(Inventory(), pki) as url:
            stderr = refused(
                [*base_args(tmp_path, trust), *dsp_args(url), "--dsp-token", TOKEN], tmp_path
            )
        assert f"the DSP's certificate at {url} is not trusted" in stderr
        assert "--dsp-ca-bundle" in stderr

    def test_accepted_token(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        inventory = Inventory()
        with (
            https_dsp(inventory, pki) as url,
            serving(
                [*base_args(tmp_path, trust), *dsp_args(url, pki)],
                tmp_path,
                env={"CHFW_RECEIVER_DSP_TOKEN": TOKEN},
            ) as receiver,
        ):
            assert f"DSP inventory at {url}: our token is accepted" in receiver.text
        assert inventory.answers[0] == 404  # the probe: a Device ID no CH has

    def test_dsp_requiring_a_client_certificate(
        self, pki: Pki, tmp_path: Path, trust: Path
    ) -> None:
        inventory = Inventory()
        with https_dsp(inventory, pki, client_ca=pki.ca) as url:
            args = [*base_args(tmp_path, trust), *dsp_args(url, pki), "--dsp-token", TOKEN]
            with serving(args, tmp_path) as receiver:
                assert "closed the connection without answering" in receiver.text
                assert "give --dsp-client-cert and --dsp-client-key" in receiver.text
            mtls = [
                "--dsp-client-cert",
                str(pki.client_cert),
                "--dsp-client-key",
                str(pki.client_key),
            ]
            with serving([*args, *mtls], tmp_path) as receiver:
                assert f"DSP inventory at {url}: our token is accepted" in receiver.text
        assert inventory.answers == [404]  # only the second start got through

    def test_unreachable_dsp_is_a_warning(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        url = f"https://127.0.0.1:{free_port()}"
        args = [*base_args(tmp_path, trust), *dsp_args(url, pki), "--dsp-token", TOKEN]
        with serving(args, tmp_path) as receiver:
            assert f"warning: cannot connect to the DSP at {url}" in receiver.text
            assert "starting anyway" in receiver.text


class TestHandshakeFailures:
    """Under mutual TLS, a client without a certificate is logged and counted."""

    def test_trace_and_metric(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        port = free_port()
        tls = [
            "--tls-cert",
            str(pki.server_cert),
            "--tls-key",
            str(pki.server_key),
            "--tls-client-ca",
            str(pki.ca),
        ]
        with serving([*base_args(tmp_path, trust, port), *tls], tmp_path) as receiver:
            url = f"https://127.0.0.1:{port}"
            for _ in range(3):
                with pytest.raises(httpx.TransportError):
                    httpx.get(f"{url}/healthz", verify=pki.client_context(with_certificate=False))
            receiver.wait_for(lambda line: "tls_handshake_failed" in line)
            metrics = httpx.get(
                f"{url}/metrics", verify=pki.client_context(with_certificate=True)
            ).text
            events = receiver.events("tls_handshake_failed")
        reason = 'reason="PEER_DID_NOT_RETURN_A_CERTIFICATE"'
        assert f"chfw_receiver_tls_handshake_failures_total{{{reason}}} 3.0" in metrics
        assert len(events) == 1  # rate-limited: the first at once, the rest counted
        assert events[0]["reason"] == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        assert "client certificate" in events[0]["hint"]


class TestSharedLookupBackoff:
    """The DSP refuses our token for a while: one line for all CHs, then every version."""

    def test_refused_then_recovered(self, pki: Pki, tmp_path: Path, trust: Path) -> None:
        hubs = [device(0x70 + n) for n in range(20)]
        inventory = Inventory(versions={str(hub): f"0A0B0C{n:02X}" for n, hub in enumerate(hubs)})
        port = free_port()
        with https_dsp(inventory, pki) as url:
            args = [*base_args(tmp_path, trust, port), *dsp_args(url, pki)]
            with serving(args, tmp_path, env={"CHFW_RECEIVER_DSP_TOKEN": TOKEN}) as receiver:
                inventory.refusing = True
                post_n999(port, hubs[0])
                receiver.wait_for(lambda line: "dsp_lookups_paused" in line)
                for hub in hubs[1:]:  # while paused: recorded, not looked up one by one
                    post_n999(port, hub)
                refused_while_down = inventory.answers.count(401)
                inventory.refusing = False
                receiver.wait_for(lambda line: "dsp_lookups_resumed" in line, timeout=60)
                versions = wait_until_fetched(tmp_path, hubs)
                paused = receiver.events("dsp_lookups_paused")
                per_hub = receiver.events("version_lookup_failed")
        assert versions == {hub: inventory.versions[str(hub)] for hub in hubs}
        assert len(paused) == 1
        assert "refused our token (401)" in paused[0]["error"]
        assert per_hub == []  # no line per CH for a failure of the DSP as a whole
        # The first CH's 401 paused every look-up: the 19 N999s after it asked nothing but
        # the single probes of the shared back-off.
        assert refused_while_down < len(hubs) // 2


def post_n999(port: int, hub: DeviceId) -> None:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/",
        content=DSP.n999(device=hub),
        headers={"content-type": "application/xml"},
    )
    assert answer.status_code == 204, answer.text


def wait_until_fetched(cwd: Path, hubs: list[DeviceId]) -> dict[DeviceId, str | None]:
    """Every hub's version and its source ('inventory') as the back office records them."""
    engine = create_engine_for(f"sqlite:///{cwd / 'supplier.db'}")
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as conn:
                views = {hub: backoffice.hub_view(conn, hub) for hub in hubs}
            if all(view is not None and not view.lookup_pending for view in views.values()):
                break
            assert time.monotonic() < deadline, "versions not fetched in time"
            time.sleep(0.1)
    finally:
        engine.dispose()
    for view in views.values():
        assert view is not None
        assert view.history[0].version_source == "inventory"
    return {hub: view.active_version for hub, view in views.items() if view is not None}
