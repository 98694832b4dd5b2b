"""`chfw uit run` through real HTTPS: chfw's own receiver passes, a naive endpoint fails.

The receiver is the real command (`chfw receiver serve`, mutual TLS, its own
SQLite back office); the naive endpoint is uvicorn answering 204 to every POST.
The kit runs in-process through its CLI, as a supplier would run it.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import structlog
from typer.testing import CliRunner

from chfw.cli import app
from chfw.shared.serving import tls_options
from chfw.uit import CASES, Expect
from tests.pki import Pki
from tests.receiver_process import VENV_CHFW, receiver_process
from tests.supplier.helpers import Served
from tests.uit.kit import Identity

pytestmark = pytest.mark.skipif(not VENV_CHFW.exists(), reason="the chfw script is not installed")

REFUSE_51 = {c.id for c in CASES if c.expect is Expect.REFUSE}
ALL_51 = {c.id for c in CASES if c.id != "valid.n999"}


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a CLI run's structlog set-up (it writes to CliRunner's stderr, closed afterwards)."""
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uit")


@pytest.fixture(scope="module")
def pki(folder: Path) -> Pki:
    return Pki.create(folder)


@pytest.fixture(scope="module")
def identity(folder: Path) -> Identity:
    return Identity.create(folder)


def _receiver(
    folder: Path, pki: Pki, identity: Identity, version: str, database: str | None = None
) -> Iterator[tuple[str, str]]:
    tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    tls += ["--tls-client-ca", str(pki.ca), "--duis-version", version, "--path", "/duis/alerts"]
    https = {"verify": pki.client_context(with_certificate=True)}
    trust = identity.cert.read_bytes()
    with receiver_process(folder, trust, *tls, https=https, database=database) as (base, db):
        yield f"{base}/duis/alerts", db


@pytest.fixture(scope="module")
def receiver51(folder: Path, pki: Pki, identity: Identity) -> Iterator[tuple[str, str]]:
    """`chfw receiver serve` on DUIS 5.1, mutual TLS: (alert URL, database URL)."""
    sub = folder / "r51"
    sub.mkdir()
    yield from _receiver(sub, pki, identity, "5.1")


async def _drain(receive: Callable[[], Any]) -> None:
    while (await receive()).get("more_body"):
        pass


def _answering(status: int, text: bytes = b"", stall: float = 0.0) -> Any:
    """An ASGI app that reads each body whole and answers ``status`` (after ``stall`` s)."""

    async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        await asyncio.sleep(stall)
        headers = [(b"content-type", b"text/plain")] if text else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": text})

    return endpoint


async def _flood(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 400 with a 64 MiB text, as fast as the client reads it."""
    if scope["type"] != "http":
        return
    await _drain(receive)
    await send({"type": "http.response.start", "status": 400, "headers": []})
    chunk = b"refused " * 8192
    for _ in range(1024):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def serve_https(pki: Pki) -> Iterator[Callable[[Any], Served]]:
    started: list[Served] = []

    def start(endpoint: Any, *, https: bool = True) -> Served:
        ssl = tls_options(pki.server_cert, pki.server_key, None) if https else {}
        server = Served(endpoint, ssl=ssl).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _kit(
    url: str, identity: Identity, pki: Pki, tmp_path: Path, *extra: str, version: str = "5.1"
) -> tuple[int, str, dict[str, Any], str]:
    """Run `chfw uit run`: (exit code, output, JSON report, HTML report)."""
    json_file, html_file = tmp_path / "report.json", tmp_path / "report.html"
    args = ["uit", "run", "--endpoint", url, "--duis-version", version]
    args += ["--sign-key", str(identity.key), "--sign-cert", str(identity.cert)]
    args += ["--ca-bundle", str(pki.ca), "--client-cert", str(pki.client_cert)]
    args += ["--client-key", str(pki.client_key), "--json", str(json_file)]
    args += ["--html", str(html_file), *extra]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    if not json_file.exists():
        return result.exit_code, result.output, {}, ""
    report = json.loads(json_file.read_text())
    return result.exit_code, result.output, report, html_file.read_text()


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {case["id"]: case for case in report["cases"]}


class TestChfwsOwnReceiver:
    """chfw's receiver behaves as DUIS expects: every case passes, records checked too."""

    def test_every_case_passes_with_records_checked(
        self, receiver51: tuple[str, str], identity: Identity, pki: Pki, tmp_path: Path
    ) -> None:
        url, database = receiver51
        code, output, report, page = _kit(url, identity, pki, tmp_path, "--chfw-database", database)
        assert code == 0, output
        assert output.startswith(f"chfw uit: {len(ALL_51)} cases to {url} (DUIS 5.1)")
        cases = _by_id(report)
        assert set(cases) == ALL_51
        assert (report["passed"], report["failed"], report["not_checked"]) == (len(ALL_51), 0, 0)
        for case_id in REFUSE_51:
            assert cases[case_id]["got"].startswith("4"), cases[case_id]
            assert cases[case_id]["got"].endswith("; recorded: nothing"), cases[case_id]
        assert cases["valid.replay"]["got"] == "204; 204; recorded: once, as signed"
        assert cases["signed-value.comment"]["got"] == "204; recorded: once, as signed"
        oversized = cases["size.oversized"]["got"]  # 413, unless the reset came first
        assert oversized.startswith(("413 ", "no answer: the endpoint closed")), oversized
        assert set(cases["valid.n64"]) >= {"id", "description", "expected", "got", "passed"}
        ids = [case["response_id"] for case in report["cases"]]
        assert len(set(ids)) == len(ids)  # every case its own alert
        assert all(i.startswith("90-B3-D5-1F-30-00-00-02:00-1D-A1-FF-FF-FF-FF-64:") for i in ids)
        assert "every case passed" in page
        assert report["signed_as"].startswith("CN=uit test DSP, serial ")
        assert report["signed_as"] in page
        assert "chfw back office database" in page

    def test_answers_only_leaves_records_not_checked(
        self, receiver51: tuple[str, str], identity: Identity, pki: Pki, tmp_path: Path
    ) -> None:
        url, _ = receiver51
        code, output, report, _ = _kit(url, identity, pki, tmp_path, "--only", "valid,signed-value")
        assert code == 0, output
        unchecked = {c["id"] for c in report["cases"] if c["not_checked"]}
        signed_values = {c.id for c in CASES if c.group == "signed-value"}
        assert unchecked == {"valid.n64", "valid.replay", *signed_values}
        assert report["not_checked"] == 2 + len(signed_values) == 6
        assert "not checked" in output

    def test_duis_5_0_gets_n999(
        self, folder: Path, pki: Pki, identity: Identity, tmp_path: Path
    ) -> None:
        sub = folder / "r50"
        sub.mkdir()
        for url, database in _receiver(sub, pki, identity, "5.0"):
            code, output, report, _ = _kit(
                url, identity, pki, tmp_path, "--chfw-database", database, version="5.0"
            )
            assert code == 0, output
            cases = _by_id(report)
            assert "valid.n999" in cases
            assert "valid.n64" not in cases
            assert cases["schema.code-lacking"]["sent"].startswith("an N64 with schemaVersion 5.0")
            assert report["failed"] == 0


class TestRecordsOnEachBackend:
    """--chfw-database reads the back office on SQLite and PostgreSQL alike."""

    def test_replays_and_split_values_recorded_as_signed(
        self, database_url: str, pki: Pki, identity: Identity, tmp_path: Path
    ) -> None:
        for url, database in _receiver(tmp_path, pki, identity, "5.1", database_url):
            code, output, report, _ = _kit(
                url, identity, pki, tmp_path, "--chfw-database", database,
                "--only", "valid,signed-value,signature.tampered",
            )  # fmt: skip
            assert code == 0, output
            assert (report["passed"], report["not_checked"]) == (len(report["cases"]), 0)
            assert all("; recorded: " in case["got"] for case in report["cases"])


class TestNaiveEndpoint:
    """204 to everything: the genuine alerts pass, every hostile case fails, exit 1."""

    def test_hostile_cases_fail(
        self,
        serve_https: Callable[[Any], Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
    ) -> None:
        naive = serve_https(_answering(204))
        code, output, report, page = _kit(naive.url("/"), identity, pki, tmp_path)
        assert code == 1, output
        cases = _by_id(report)
        failed = {case_id for case_id, case in cases.items() if not case["passed"]}
        assert failed == REFUSE_51
        assert report["failed"] == len(REFUSE_51)
        assert all(cases[case_id]["got"] == "204" for case_id in failed)
        # Accepting a comment-split value is allowed; what was recorded cannot be seen here.
        assert cases["signed-value.comment"]["passed"] is True
        assert cases["signed-value.comment"]["not_checked"]
        assert "the endpoint FAILED" in output
        assert "<h1>DCC Alert N64/N999 integration test: FAILED</h1>" in page
        for case_id in REFUSE_51:
            assert f'<tr id="{case_id}">' in page

    def test_what_an_endpoint_answers_is_escaped(
        self,
        serve_https: Callable[[Any], Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
    ) -> None:
        hostile = b"<script>alert('x')</script> [bold red]markup[/bold red]"
        endpoint = serve_https(_answering(400, hostile))
        code, output, report, page = _kit(
            endpoint.url("/"), identity, pki, tmp_path, "--only", "valid.n64,signature.unsigned"
        )
        assert code == 1, output
        cases = _by_id(report)
        assert (cases["valid.n64"]["passed"], cases["signature.unsigned"]["passed"]) == (
            False,
            True,
        )
        assert "<script>" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
        assert "[bold red]markup[/bold red]" in output  # shown as text, not as terminal markup


@pytest.fixture
def closing(pki: Pki) -> Iterator[str]:
    """An HTTPS endpoint that reads the headers, answers 413 and closes without reading the body.

    What a careful endpoint does with a declared Content-Length over its limit. The
    kit's write of the rest then fails, and the reset may take the 413 with it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    head = b""
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        head += tls.recv(4096) or b"\r\n\r\n"
                    tls.sendall(b"HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\n\r\n")
            except OSError:
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/"
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
    listener.close()
    thread.join(10)


class TestOversized:
    def test_closing_the_connection_on_a_large_body_refuses_it(
        self, closing: str, identity: Identity, pki: Pki, tmp_path: Path
    ) -> None:
        size = str(32 * 1024 * 1024)  # more than any socket buffer holds: the write fails
        code, output, report, _ = _kit(
            closing, identity, pki, tmp_path, "--only", "size", "--oversized-bytes", size
        )
        assert code == 0, output
        (case,) = report["cases"]
        assert case["passed"] is True
        # The 413 is read when it arrives before the reset, else the closing is the refusal.
        assert case["got"] == "413" or case["got"].startswith(
            "no answer: the endpoint closed the connection"
        ), case


class Naive:
    """An endpoint that verifies nothing and records what a naive reader sees, with a record API.

    POST: 204, and the first text node of ResponseID, DeviceID and FirmwareVersion is
    appended to the records (a replay makes a second copy). GET /records/{response_id}:
    the kit's observation protocol (404, or 200 with copies and values); ``broken``
    makes it answer that instead.
    """

    def __init__(self, broken: tuple[int, bytes] | None = None) -> None:
        self.records: dict[str, list[dict[str, str | None]]] = {}
        self.broken = broken

    @staticmethod
    def _first_text(body: bytes, element: str) -> str | None:
        match = re.search(rb"<sr:%s>([^<]*)" % element.encode(), body)
        return match[1].decode() if match else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            rid = self._first_text(body, "ResponseID") or ""
            values = {e: self._first_text(body, e) for e in ("DeviceID", "FirmwareVersion")}
            self.records.setdefault(rid, []).append(values)
            status, text = 204, b""
        elif self.broken is not None:
            status, text = self.broken
        else:
            status, text = self._record(unquote(scope["path"].removeprefix("/records/")))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": text})

    def _record(self, rid: str) -> tuple[int, bytes]:
        copies = self.records.get(rid)
        if not copies:
            return 404, b""
        device, version = copies[0]["DeviceID"], copies[0]["FirmwareVersion"]
        record = {"copies": len(copies), "device_id": device, "firmware_version": version}
        return 200, json.dumps(record).encode()


class TestObservedOverHttp:
    """--observe-url: what an endpoint recorded, from its own test environment's record API."""

    def test_records_show_what_the_answers_cannot(
        self,
        serve_https: Callable[[Any], Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
    ) -> None:
        endpoint = serve_https(Naive())
        observe = endpoint.url("/records/{response_id}")
        code, output, report, page = _kit(
            endpoint.url("/"), identity, pki, tmp_path, "--observe-url", observe,
            "--only", "valid,signed-value,signature.unsigned",
        )  # fmt: skip
        assert code == 1, output
        cases = _by_id(report)
        assert cases["valid.n64"]["got"] == "204; recorded: once, as signed"
        assert cases["valid.replay"]["got"] == "204; 204; recorded: 2 times"
        assert cases["signed-value.comment"]["got"] == (
            "204; recorded: FirmwareVersion '0A0B', signed '0A0B0C0D'"
        )
        assert cases["signed-value.comment-in-id"]["got"] == (
            "204; recorded: nothing (accepted, yet not recorded)"  # under the half it read
        )
        assert cases["signed-value.cdata"]["got"] == cases["signed-value.comment"]["got"]
        assert cases["signed-value.reference"]["got"] == (
            "204; recorded: FirmwareVersion '&#x30;A0B0C0D', signed '0A0B0C0D'"
        )
        assert cases["signature.unsigned"]["got"] == "204"
        assert [c["id"] for c in report["cases"] if c["passed"]] == ["valid.n64"]
        assert (report["not_checked"], report["observed_by"]) == (0, f"GET {observe}")
        assert f"GET {observe}" in page

    @pytest.mark.parametrize(
        ("broken", "reason"),
        [
            ((500, b"oops"), "answered 500, not 200 or 404"),
            ((200, b"<html/>"), "the answer is not JSON"),
            ((200, b"[1]"), "not a JSON object"),
            ((200, b'{"copies": 0}'), "copies must be a whole number from 1, got 0"),
            ((200, b'{"copies": 1, "device_id": 7}'), "device_id must be a string or null"),
        ],
    )
    def test_a_record_that_cannot_be_read_fails_the_case(
        self,
        serve_https: Callable[[Any], Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
        broken: tuple[int, bytes],
        reason: str,
    ) -> None:
        endpoint = serve_https(Naive(broken))
        code, output, report, _ = _kit(
            endpoint.url("/"), identity, pki, tmp_path, "--only", "valid.n64",
            "--observe-url", endpoint.url("/records/{response_id}"),
        )  # fmt: skip
        assert code == 1, output
        (case,) = report["cases"]
        assert case["got"].startswith("204; recorded: could not tell (GET https://")
        assert reason in case["got"]

    def test_a_template_without_the_response_id(
        self, identity: Identity, pki: Pki, tmp_path: Path
    ) -> None:
        code, output, _, _ = _kit(
            "https://127.0.0.1:9/", identity, pki, tmp_path, "--observe-url", "https://x/records"
        )
        assert code == 2
        assert "has no {response_id} in it" in output

    def test_one_way_to_observe_at_a_time(
        self, identity: Identity, pki: Pki, tmp_path: Path
    ) -> None:
        code, output, _, _ = _kit(
            "https://127.0.0.1:9/", identity, pki, tmp_path,
            "--observe-url", "https://x/{response_id}", "--chfw-database", "sqlite://",
        )  # fmt: skip
        assert code == 2
        assert "not both" in output


class TestHostileAnswers:
    def test_an_endless_answer_is_read_only_in_part(
        self,
        serve_https: Callable[[Any], Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
    ) -> None:
        flood = serve_https(_flood)
        code, output, report, _ = _kit(
            flood.url("/"), identity, pki, tmp_path, "--only", "signature.unsigned"
        )
        assert code == 0, output
        (case,) = report["cases"]
        assert case["got"].startswith("400 refused refused")
        assert len(case["got"]) <= len("400 ") + 160  # the status and the start of the text


class TestSafety:
    """Nothing is sent to a plain-http URL without --allow-http; the target is printed first."""

    def test_plain_http_is_refused_before_connecting(
        self, identity: Identity, pki: Pki, tmp_path: Path
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            sock.setblocking(False)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
            code, output, report, _ = _kit(url, identity, pki, tmp_path)
            with pytest.raises(BlockingIOError):
                sock.accept()
        assert code == 2
        assert "is not https" in output
        assert "--allow-http" in output
        assert report == {}

    def test_allow_http_for_a_local_endpoint(
        self,
        serve_https: Callable[..., Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
    ) -> None:
        plain = serve_https(_answering(204), https=False)
        code, output, report, _ = _kit(
            plain.url("/"), identity, pki, tmp_path, "--allow-http", "--only", "valid"
        )
        assert code == 0, output
        assert output.startswith(f"chfw uit: 2 cases to {plain.url('/')}")
        assert report["passed"] == 2

    def test_a_case_that_gets_no_answer_in_time_fails(
        self,
        serve_https: Callable[[Any], Served],
        identity: Identity,
        pki: Pki,
        tmp_path: Path,
    ) -> None:
        slow = serve_https(_answering(204, stall=3.0))
        code, output, report, _ = _kit(
            slow.url("/"), identity, pki, tmp_path, "--only", "valid.n64", "--timeout", "0.3"
        )
        assert code == 1, output
        (case,) = report["cases"]
        assert case["got"] == "no answer within 0.3 s"
        assert case["passed"] is False

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("--timeout", "0", "timeout 0 s must be more than 0"),
            ("--oversized-bytes", "100", "oversized body of 100 bytes"),
            ("--duis-version", "4.9", "DUIS version 4.9 is not supported"),
            ("--device-id", "nope", "Device ID 'nope'"),
        ],
    )
    def test_bad_options_stop_before_sending(
        self, identity: Identity, pki: Pki, tmp_path: Path, option: str, value: str, message: str
    ) -> None:
        code, output, _, _ = _kit("https://127.0.0.1:9/", identity, pki, tmp_path, option, value)
        assert code == 2
        assert message in output
        assert "cases to" not in output

    def test_unknown_group(self, identity: Identity, pki: Pki, tmp_path: Path) -> None:
        code, output, _, _ = _kit("https://127.0.0.1:9/", identity, pki, tmp_path, "--skip", "x")
        assert code == 2
        assert "no case or group named x" in output
