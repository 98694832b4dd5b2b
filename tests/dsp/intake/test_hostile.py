"""Hostile input at the intake: every bad request gets a clean 4xx and leaves nothing behind."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chfw.dsp.intake import create_app
from chfw.dsp.store import csps
from chfw.dsp.store.schema import firmware_history
from chfw.shared.config import Settings
from chfw.shared.serving import ClientLimits
from tests.dsp.intake.helpers import NOTHING, stored, valid_message
from tests.dsp.intake.server import read_answer, running
from tests.small_dsp import Dsp

LIMIT = 2048  # intake_max_body_bytes in these tests
BATCH_MAX = 5


@pytest.fixture
def app(dsp: Dsp) -> FastAPI:
    return create_app(
        Settings(intake_max_body_bytes=LIMIT, intake_batch_max=BATCH_MAX), dsp.service
    )


def post_raw(client: httpx.Client, body: bytes | str, content_type: str) -> httpx.Response:
    return client.post("/csp/v1/messages", content=body, headers={"content-type": content_type})


class TestOversized:
    """Bodies over the limit are refused with 413 before anything is processed or stored."""

    def test_declared_length_over_the_limit(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = post_raw(client, b"\xdf" * (LIMIT + 1), "application/octet-stream")
        assert answer.status_code == 413
        assert str(LIMIT) in answer.json()["detail"]
        assert stored(dsp.engine) == NOTHING

    def test_streamed_body_without_length_is_cut_off(self, client: httpx.Client, dsp: Dsp) -> None:
        sent = []

        def chunks() -> Iterator[bytes]:
            for _ in range(64):  # 64 KiB offered; the limit is 2 KiB
                sent.append(1024)
                yield b"A" * 1024

        answer = client.post(
            "/csp/v1/messages", content=chunks(), headers={"content-type": "text/plain"}
        )
        assert answer.status_code == 413
        assert stored(dsp.engine) == NOTHING

    def test_batch_body_over_the_limit(self, client: httpx.Client, dsp: Dsp) -> None:
        messages = [valid_message(n).hex() for n in range(1, 5)] + ["00" * LIMIT]
        answer = client.post("/csp/v1/messages/batch", json={"messages": messages})
        assert answer.status_code == 413
        assert stored(dsp.engine) == NOTHING

    def test_batch_with_too_many_messages(self, client: httpx.Client, dsp: Dsp) -> None:
        messages = ["DF"] * (BATCH_MAX + 1)
        answer = client.post("/csp/v1/messages/batch", json={"messages": messages})
        assert answer.status_code == 413
        assert f"limit {BATCH_MAX}" in answer.json()["detail"]
        assert stored(dsp.engine) == NOTHING

    def test_a_message_within_the_limit_is_processed(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = post_raw(client, valid_message(), "application/octet-stream")
        assert answer.status_code == 200
        assert answer.json()["status"] == "processed"


class TestMalformed:
    """Bytes that are not a CS06 outcome get 400 with the decoder's reason and are kept."""

    def test_malformed_bytes(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = post_raw(client, valid_message()[:-3], "application/octet-stream")
        assert answer.status_code == 400
        body = answer.json()
        assert body["status"] == "malformed"
        assert body["offset"] >= 0
        assert stored(dsp.engine) == {**NOTHING, "intake_rejections": 1}

    def test_hex_with_a_bad_character(self, client: httpx.Client, dsp: Dsp) -> None:
        text = valid_message().hex()
        answer = post_raw(client, text[:10] + "zz" + text[12:], "text/plain")
        assert answer.status_code == 400
        assert answer.json()["offset"] == 5
        assert "not a hex digit" in answer.json()["error"]
        assert stored(dsp.engine) == {**NOTHING, "intake_rejections": 1}

    def test_odd_length_hex(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = post_raw(client, valid_message().hex()[:-1], "text/plain")
        assert answer.status_code == 400
        assert "odd number of hex digits" in answer.json()["error"]
        assert stored(dsp.engine)["intake_rejections"] == 1

    def test_non_ascii_text(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = post_raw(client, "DF09é".encode(), "text/plain; charset=utf-8")
        assert answer.status_code == 400
        assert "ASCII" in answer.json()["detail"]
        assert stored(dsp.engine)["outbox"] == 0

    def test_batch_items_that_are_not_strings(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = client.post("/csp/v1/messages/batch", json={"messages": [{"$ne": 1}]})
        assert answer.status_code == 422
        assert stored(dsp.engine) == NOTHING

    def test_batch_body_that_is_not_json(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = client.post(
            "/csp/v1/messages/batch",
            content=b'{"messages": ["DF09"',
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 422
        assert stored(dsp.engine) == NOTHING


class TestContentType:
    """Only raw bytes or hex text are read; anything else is 415 and not looked at."""

    @pytest.mark.parametrize(
        "content_type", ["application/json", "application/xml", "multipart/form-data", ""]
    )
    def test_refused(self, client: httpx.Client, dsp: Dsp, content_type: str) -> None:
        answer = post_raw(client, valid_message(), content_type)
        assert answer.status_code == 415
        assert stored(dsp.engine) == NOTHING


class TestCredentials:
    """Without an enabled CSP's credential nothing is read: 401, the same answer every time."""

    def _post(self, client: httpx.Client, authorization: str | None) -> httpx.Response:
        headers = {"content-type": "application/octet-stream"}
        if authorization is not None:
            headers["authorization"] = authorization
        else:
            client.headers.pop("authorization", None)
        return client.post("/csp/v1/messages", content=valid_message(), headers=headers)

    def test_missing(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = self._post(client, None)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert stored(dsp.engine) == NOTHING

    def test_other_scheme(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = self._post(client, f"Basic {dsp.credential}")
        assert answer.status_code == 401
        assert stored(dsp.engine) == NOTHING

    def test_wrong_malformed_and_disabled_look_alike(self, client: httpx.Client, dsp: Dsp) -> None:
        wrong_secret = dsp.credential[:-1] + ("B" if dsp.credential.endswith("A") else "A")
        answers = [self._post(client, f"Bearer {wrong_secret}")]
        answers.append(self._post(client, "Bearer not-a-credential"))
        with dsp.engine.begin() as conn:
            csps.disable_csp(conn, "north-csp")
        answers.append(self._post(client, f"Bearer {dsp.credential}"))
        assert {a.status_code for a in answers} == {401}
        assert len({a.text for a in answers}) == 1
        assert stored(dsp.engine) == NOTHING

    def test_credential_is_not_echoed(self, client: httpx.Client, dsp: Dsp) -> None:
        answer = self._post(client, f"Bearer {dsp.credential}x")
        assert answer.status_code == 401
        assert dsp.credential not in answer.text


class TestRandomBodies:
    """Random and mutated bodies get an answer (never a 500), and every refusal is recorded."""

    @settings(
        max_examples=40,
        deadline=None,
        # The fixtures give a fresh app per backend run, which is what is wanted; and the class
        # is instantiated once per backend, which holds no state.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        st.one_of(
            st.binary(max_size=120),
            st.tuples(st.integers(0, 80), st.binary(min_size=1, max_size=4)).map(
                lambda cut: valid_message(11)[: cut[0]] + cut[1] + valid_message(11)[cut[0] + 1 :]
            ),
        ),
        st.sampled_from(["application/octet-stream", "text/plain"]),
    )
    def test_never_a_server_error(
        self, client: httpx.Client, dsp: Dsp, body: bytes, content_type: str
    ) -> None:
        before = stored(dsp.engine)["intake_rejections"]
        if content_type == "text/plain":
            body = body.hex().encode() if body[:1] != b"\xff" else body
        answer = post_raw(client, body, content_type)
        assert answer.status_code in (200, 202, 400, 409), answer.text
        recorded = stored(dsp.engine)["intake_rejections"] - before
        if answer.status_code == 202:  # decoded, for a CH not in the estate: parked
            assert answer.json()["status"] == "parked"
            assert recorded == 0
        elif "offset" in answer.json():
            assert recorded == 1
            assert answer.json()["error"]
        elif answer.status_code == 400:  # refused before decoding: not ASCII hex text
            assert recorded == 0
            assert answer.json()["detail"]


class TestSlowClients:
    """A client that trickles its request is cut off (408); other clients are served meanwhile."""

    LIMITS = ClientLimits(request_seconds=0.5, keep_alive_seconds=1, max_header_bytes=4096)

    @pytest.fixture
    def server(self, app: FastAPI) -> Iterator[tuple[str, int]]:
        with running(app, self.LIMITS) as address:
            yield address

    @staticmethod
    def trickle(sock: socket.socket, parts: Iterator[bytes]) -> bytes:
        """Send ``parts`` slowly until the server stops listening; then read its answer."""
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.1)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the server has answered: stop sending
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
        return read_answer(sock)

    def test_trickled_headers(self, server: tuple[str, int], dsp: Dsp) -> None:
        start = b"POST /csp/v1/messages HTTP/1.1\r\nHost: intake\r\n"
        headers = (b"X-Slow-%d: 1\r\n" % n for n in range(100))  # bounded: 10 s at most
        with socket.create_connection(server) as slow:
            slow.sendall(start)
            healthy = httpx.get(f"http://{server[0]}:{server[1]}/healthz", timeout=5)
            answer = self.trickle(slow, headers)
        assert healthy.status_code == 200
        assert answer.startswith(b"HTTP/1.1 408")
        assert stored(dsp.engine) == NOTHING

    def test_trickled_body(self, server: tuple[str, int], dsp: Dsp) -> None:
        body = valid_message()
        head = (
            b"POST /csp/v1/messages HTTP/1.1\r\nHost: intake\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Authorization: Bearer " + dsp.credential.encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        with socket.create_connection(server) as slow:
            slow.sendall(head)
            others = httpx.post(
                f"http://{server[0]}:{server[1]}/csp/v1/messages",
                content=valid_message(counter=99),
                headers={
                    "content-type": "application/octet-stream",
                    "authorization": f"Bearer {dsp.credential}",
                },
                timeout=10,
            )
            answer = self.trickle(slow, (body[i : i + 1] for i in range(len(body) - 1)))
        assert others.status_code == 200
        assert answer.startswith(b"HTTP/1.1 408")
        with dsp.engine.connect() as conn:
            counters = conn.execute(sa.select(firmware_history.c.originator_counter)).scalars()
            assert list(counters) == ["99"]  # the prompt client's message only

    def test_silent_connection_is_closed(self, server: tuple[str, int]) -> None:
        with socket.create_connection(server) as idle:
            answer = read_answer(idle)
        assert answer.startswith(b"HTTP/1.1 408")

    def test_headers_over_the_cap(self, server: tuple[str, int]) -> None:
        with socket.create_connection(server) as greedy:
            greedy.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\n")
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                greedy.sendall(b"X-Big: " + b"a" * 8192 + b"\r\n")
            answer = read_answer(greedy)
        assert answer.startswith(b"HTTP/1.1 431")

    def test_a_prompt_client_is_unaffected(self, server: tuple[str, int], dsp: Dsp) -> None:
        with httpx.Client(base_url=f"http://{server[0]}:{server[1]}", timeout=5) as prompt:
            answers = [
                prompt.post(
                    "/csp/v1/messages",
                    content=valid_message(counter=n),
                    headers={
                        "content-type": "application/octet-stream",
                        "authorization": f"Bearer {dsp.credential}",
                    },
                )
                for n in (1, 2, 3)
            ]
        assert [a.json()["status"] for a in answers] == ["processed"] * 3
