"""Hostile HTTP at every route of the receiver, served as `chfw receiver serve` serves it.

Every answer is below 500, every body is bounded, and the server answers a
normal request afterwards. Requests are written on raw sockets, since HTTP
clients refuse to send most of them.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.shared.serving import ClientLimits
from chfw.shared.web.auth import FORM_MAX_BYTES
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.dsp.intake.server import read_answer, running
from tests.supplier.helpers import Dsp, count_rows

TOKEN = "hostile-http-dashboard-token"
LIMITS = ClientLimits(request_seconds=30, max_header_bytes=16 * 1024)
BEARER = f"Authorization: Bearer {TOKEN}\r\n".encode()

ROUTES = [
    ("POST", "/"),  # the alert endpoint
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/"),
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("POST", "/dashboard/logout"),
    ("GET", "/dashboard/live.json"),
    ("GET", "/dashboard/charts/pilot.svg"),
    ("GET", "/dashboard/static/style.css"),
    ("GET", "/openapi.json"),
    ("GET", "/no/such/page"),
    ("PUT", "/dashboard/login"),
    ("DELETE", "/"),
    ("PATCH", "/healthz"),
    ("OPTIONS", "/dashboard/"),
]
"""(method, path) of every route, and a few that are not allowed."""

QUERIES = [
    "min_version=%FF",
    "min_version=%00",
    "min_version=" + "0" * 4000,
    "pilot=" + "p" * 8000,
    "pilot=%FF%FE%00",
    "pilot=a&pilot=b&min_version=1&min_version=%zz",
    "%zz=%zz&&&==",
    "min_version[]=01",
]
"""Query strings for the dashboard pages (the others ignore them)."""


@pytest.fixture
def address(engine: Engine, dsp: Dsp) -> Iterator[tuple[str, int]]:
    app = create_receiver_app(ReceiverConfig(trust=dsp.trust), engine, dashboard_token=TOKEN)
    with running(app, LIMITS) as served:
        yield served


def exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send ``request`` (its first line, ``Connection: close``, then the rest) and read it all."""
    line, rest = request.split(b"\r\n", 1)
    with socket.create_connection(address) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(line + b"\r\nConnection: close\r\n" + rest)
        return read_answer(sock)


def status_of(answer: bytes) -> int:
    """The answer's status code; 0 when the server closed without answering."""
    if not answer.startswith(b"HTTP/1.1 "):
        return 0
    return int(answer[9:12])


def request(method: str, path: str, headers: bytes = b"", body: bytes = b"") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body) if body or method in ("POST", "PUT") else b""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: receiver\r\n".encode() + length + headers + b"\r\n"
    ) + body


def assert_still_serving(address: tuple[str, int], dsp: Dsp, engine: Engine) -> None:
    base = f"http://{address[0]}:{address[1]}"
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    posted = httpx.post(
        f"{base}/", content=dsp.n64(), headers={"content-type": "application/xml"}, timeout=10
    )
    assert posted.status_code == 204, posted.text
    assert count_rows(engine, "bo_alerts") == 1


def sweep(address: tuple[str, int], headers: bytes = b"", body: bytes = b"") -> dict[str, int]:
    """Every route with these headers (and body); the answers below 500 are left out."""
    answers = {
        f"{method} {path}": status_of(exchange(address, request(method, path, headers, body)))
        for method, path in ROUTES
    }
    return {route: status for route, status in answers.items() if not 0 < status < 500}


HOSTILE_HEADERS = {
    "non-UTF-8 header value": b"X-Note: \xff\xfe\xc3\x28\r\n",
    "non-UTF-8 Host": b"X-Real-Host: a\r\nHost: \xff\xfe\r\n",
    "non-UTF-8 Origin": b"Origin: http://\xff\r\n",
    "non-UTF-8 Content-Type": b"Content-Type: \xff/\xfe; charset=\xfd\r\n",
    "unknown charset": b"Content-Type: application/x-www-form-urlencoded; charset=nope\r\n",
    "non-ASCII bearer token": b"Authorization: Bearer \xc3\xa9\xc3\xa9\xff\r\n",
    "empty bearer token": b"Authorization: Bearer\r\n",
    "other auth scheme": b"Authorization: Basic Zm9vOmJhcg==\r\n",
    "garbage session cookie": b'Cookie: chfw_supplier_session=a.b.c.d; ;;=="; x\r\n',
    "non-ASCII session cookie": b"Cookie: chfw_supplier_session=\xc3\xa9.\xb2.ab\r\n",
    "session cookie with a huge issue time": b"Cookie: chfw_supplier_session=x."
    + b"9" * 6000
    + b".abc\r\n",
    "huge cookie": b"Cookie: chfw_supplier_session=" + b"c" * 12000 + b"\r\n",
    "many cookies": b"Cookie: " + b"; ".join(b"k%d=v" % n for n in range(1000)) + b"\r\n",
    "non-ASCII session MAC": b"Cookie: chfw_supplier_session=YQ.1700000000."
    + b"0123456789abcdef" * 2
    + b".\xe9\r\n",
    "non-ASCII MAC, three-part cookie": b"Cookie: chfw_supplier_session=YQ.1700000000.\xe9\r\n",
    "hostile forwarded headers": b"X-Forwarded-For: \xff, ::::, 999.1.1.1\r\n"
    b'X-Forwarded-Proto: \xfe\r\nForwarded: for="[::1\r\n',
    "bearer and garbage cookie": BEARER + b"Cookie: chfw_supplier_session=...\r\n",
}


class TestHostileHeaders:
    """Odd, malformed and non-UTF-8 header values get an answer below 500 on every route."""

    @pytest.mark.parametrize(
        "name",
        list(HOSTILE_HEADERS),
    )
    def test_every_route(
        self, address: tuple[str, int], dsp: Dsp, engine: Engine, name: str
    ) -> None:
        assert sweep(address, HOSTILE_HEADERS[name], b"a=b") == {}
        assert_still_serving(address, dsp, engine)


MALFORMED_FRAMING = {
    "Content-Length not a number": b"Content-Length: abc\r\n",
    "negative Content-Length": b"Content-Length: -1\r\n",
    "two different Content-Lengths": b"Content-Length: 3\r\nContent-Length: 4\r\n",
    "Content-Length and chunked": b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
    "unknown transfer coding": b"Transfer-Encoding: gzip, zebra\r\n",
    "Content-Length past 2**64": b"Content-Length: 99999999999999999999999999\r\n",
}


class TestMalformedFraming:
    """A body whose length cannot be told is refused by the HTTP parser: 400, never 500."""

    @pytest.mark.parametrize("name", list(MALFORMED_FRAMING))
    def test_every_route(
        self, address: tuple[str, int], dsp: Dsp, engine: Engine, name: str
    ) -> None:
        statuses = set()
        for method, path in ROUTES:
            raw = f"{method} {path} HTTP/1.1\r\nHost: receiver\r\n".encode()
            answer = exchange(address, raw + MALFORMED_FRAMING[name] + b"\r\n0\r\n\r\n")
            statuses.add(status_of(answer))
        assert statuses <= {400, 413}
        assert_still_serving(address, dsp, engine)

    def test_bad_chunk_sizes(self, address: tuple[str, int], dsp: Dsp, engine: Engine) -> None:
        for method, path in ROUTES:
            raw = f"{method} {path} HTTP/1.1\r\nHost: receiver\r\nTransfer-Encoding: chunked\r\n"
            answer = exchange(address, raw.encode() + b"\r\nzz\r\nabc\r\n0\r\n\r\n")
            assert status_of(answer) == 400, (method, path, answer[:80])
        assert_still_serving(address, dsp, engine)

    def test_headers_over_the_cap(self, address: tuple[str, int], dsp: Dsp, engine: Engine) -> None:
        huge = b"X-Big: " + b"a" * LIMITS.max_header_bytes + b"\r\n"
        for method, path in ROUTES:
            with socket.create_connection(address) as sock:
                sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: receiver\r\n".encode())
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(huge)
                answer = read_answer(sock)
            assert status_of(answer) == 431, (method, path, answer[:80])
        assert_still_serving(address, dsp, engine)

    @pytest.mark.parametrize("size", [2, 6])
    def test_headers_over_the_cap_in_one_write(
        self, address: tuple[str, int], dsp: Dsp, engine: Engine, size: int
    ) -> None:
        """Headers that complete within one read are counted too (they once slipped through)."""
        big = b"X-Big: " + b"a" * (size * LIMITS.max_header_bytes) + b"\r\n"
        for method, path in ROUTES:
            request = f"{method} {path} HTTP/1.1\r\nHost: receiver\r\n".encode() + big + b"\r\n"
            with socket.create_connection(address) as sock:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(request)
                answer = read_answer(sock)
            assert status_of(answer) == 431, (method, path, answer[:80])
        assert_still_serving(address, dsp, engine)


class TestHostileQueries:
    """Bad query strings on the dashboard's pages, signed in: an answer below 500."""

    @pytest.mark.parametrize("query", QUERIES, ids=lambda q: q[:40])
    def test_every_route(
        self, address: tuple[str, int], dsp: Dsp, engine: Engine, query: str
    ) -> None:
        failed = {}
        for method, path in ROUTES:
            answer = exchange(address, request(method, f"{path}?{query}", BEARER))
            if not 0 < status_of(answer) < 500:
                failed[f"{method} {path}"] = status_of(answer)
        assert failed == {}
        assert_still_serving(address, dsp, engine)

    def test_raw_bytes_in_the_path(self, address: tuple[str, int]) -> None:
        for raw in (b"/dashboard/\xff", b"/dashboard/%FF", b"/%00", b"/dashboard/../../etc"):
            answer = exchange(
                address, b"GET " + raw + b" HTTP/1.1\r\nHost: r\r\n" + BEARER + b"\r\n"
            )
            assert 0 < status_of(answer) < 500, (raw, answer[:80])


class TestSignedInForms:
    """A signed-in session posting odd forms: refused, never a server error."""

    @pytest.fixture
    def cookie(self, address: tuple[str, int]) -> bytes:
        answer = httpx.post(
            f"http://{address[0]}:{address[1]}/dashboard/login",
            data={"token": TOKEN, "name": "Ada"},
            timeout=10,
        )
        assert answer.status_code == 303
        value = answer.cookies["chfw_supplier_session"]
        return f"Cookie: chfw_supplier_session={value}\r\n".encode()

    @pytest.mark.parametrize(
        "form",
        [
            b"csrf=",
            b"csrf=%FF%FE",
            b"csrf=" + b"x" * 60000,
            b"%zz&&==&csrf",
            "csrf=é".encode(),
        ],
        ids=["empty", "percent-encoded bytes", "long", "garbage", "non-ASCII"],
    )
    def test_logout_with_a_bad_csrf_token(
        self, address: tuple[str, int], cookie: bytes, form: bytes
    ) -> None:
        answer = exchange(address, request("POST", "/dashboard/logout", cookie, form))
        assert status_of(answer) == 403

    def test_pages_with_bad_queries(self, address: tuple[str, int], cookie: bytes) -> None:
        for query in QUERIES:
            answer = exchange(address, request("GET", f"/dashboard/?{query}", cookie))
            assert status_of(answer) in (200, 400), (query[:40], answer[:80])


class TestBodyLimits:
    """Every route but the alert POST reads at most FORM_MAX_BYTES; the rest is never read."""

    def test_declared_sign_in_form_over_the_limit(self, address: tuple[str, int]) -> None:
        form = b"token=" + b"t" * FORM_MAX_BYTES
        answer = exchange(address, request("POST", "/dashboard/login", body=form))
        assert status_of(answer) == 413

    def test_streamed_sign_in_form_over_the_limit(self, address: tuple[str, int]) -> None:
        head = (
            b"POST /dashboard/login HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (16 * 1024, b"t" * 16 * 1024)
        with socket.create_connection(address) as sock:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(head + b"6\r\ntoken=\r\n")
                for _ in range(FORM_MAX_BYTES // (16 * 1024) + 1):
                    sock.sendall(chunk)
            answer = read_answer(sock)  # the server answers and closes: no terminating chunk
        assert status_of(answer) == 413
        assert b"connection: close" in answer.lower()

    @pytest.mark.parametrize("path", ["/healthz", "/dashboard/login", "/metrics"])
    def test_get_with_a_body_over_the_limit(self, address: tuple[str, int], path: str) -> None:
        answer = exchange(address, request("GET", path, body=b"x" * (FORM_MAX_BYTES + 1)))
        assert status_of(answer) == 413

    def test_alert_post_keeps_its_own_limit(self, address: tuple[str, int], dsp: Dsp) -> None:
        answer = exchange(address, request("POST", "/", body=dsp.n64() + b" " * FORM_MAX_BYTES))
        assert status_of(answer) == 204


class TestStalledBodies:
    """A client that sends part of its body and stalls holds its own connection, nothing else."""

    def test_other_requests_are_answered_meanwhile(
        self, address: tuple[str, int], dsp: Dsp, engine: Engine
    ) -> None:
        alert = dsp.n64()
        stalled_alert = request("POST", "/", body=alert)[: -len(alert) // 2]
        stalled_form = request("POST", "/dashboard/login", body=f"token={TOKEN}".encode())[:-4]
        chunked = b"POST / HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<sr:R"
        base = f"http://{address[0]}:{address[1]}"
        with contextlib.ExitStack() as stack:
            for partial in [stalled_alert, stalled_form, chunked] * 20:
                sock = stack.enter_context(socket.create_connection(address))
                sock.sendall(partial)
            with httpx.Client(base_url=base, timeout=10) as prompt:
                healthy = prompt.get("/healthz")
                posted = prompt.post("/", content=alert, headers={"content-type": "text/xml"})
                signed_in = prompt.post("/dashboard/login", data={"token": TOKEN})
                page = prompt.get("/dashboard/")
        assert healthy.status_code == 200
        assert posted.status_code == 204, posted.text
        assert signed_in.status_code == 303
        assert page.status_code == 200
        assert count_rows(engine, "bo_alerts") == 1
