"""Hostile documents at a served receiver: no DTD of any kind, nothing stalls, codes by version.

Every test posts to a real uvicorn serving ``create_receiver_app`` (what
``chfw receiver serve`` runs), over a real database.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import DuisVersion
from chfw.core.xmlsafe import DOCTYPE_REFUSED
from chfw.supplier import backoffice
from chfw.supplier.pipeline import REASON_MAX, AlertReceiver, Checked
from chfw.uit.documents import DOCTYPE_FORMS
from tests.supplier.helpers import CH, POWER_OUTAGE, Dsp, Served, count_rows

# A 60-byte POST that once froze the receiver: the parser read /dev/zero for ever.
DEV_ZERO = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///dev/zero"> %p;]><r/>'


def _hostile(target: str, signed: bytes) -> list[bytes]:
    """Every way a DTD can ask to load ``target``, bare and around a validly signed alert.

    The forms are the integration-test kit's (``chfw uit``'s ``dtd`` cases): what
    chfw's receiver refuses is what the kit asks of every supplier's endpoint.
    """
    return [form.make(target, signed) for form in DOCTYPE_FORMS]


class TestNoDtdOfAnyKind:
    """A DOCTYPE is refused before the parser sees it, with one answer whatever it names."""

    def test_the_60_byte_post_is_answered_at_once(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        answer = receiver.post(DEV_ZERO)
        assert (answer.status_code, answer.text) == (400, f"unreadable document: {DOCTYPE_REFUSED}")
        assert receiver.post(dsp.n64()).status_code == 204

    def test_same_answer_whatever_exists_on_disk(
        self,
        receiver: Served,
        dsp: Dsp,
        engine: Engine,
        tmp_path: Path,
        listener: socket.socket,
    ) -> None:
        readable = tmp_path / "exists.dtd"
        readable.write_text('<!ENTITY e "from the disk">')
        targets = [
            readable.as_uri(),
            (tmp_path / "missing.dtd").as_uri(),
            "file:///etc/passwd",
            "file:///dev/zero",
            "file:///proc/self/environ",
            f"http://127.0.0.1:{listener.getsockname()[1]}/evil.dtd",
        ]
        answers = {
            (target, n): receiver.post(body)
            for target in targets
            for n, body in enumerate(_hostile(target, dsp.n64()))
        }
        assert {(a.status_code, a.text) for a in answers.values()} == {
            (400, f"unreadable document: {DOCTYPE_REFUSED}")
        }
        with pytest.raises(BlockingIOError):
            listener.accept()
        assert count_rows(engine, "bo_alerts") == 0

    @pytest.mark.parametrize(
        "body",
        [
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r SYSTEM "file:///dev/zero"><r/>'.encode(
                "utf-16"
            ),
            b'<?xml version="1.0" encoding="ISO-8859-1"?><r/>',
            b"\x00<\x00r\x00/\x00>",
            b"\x4c\x6f\xa7\x94",  # '<?xm' in EBCDIC
        ],
        ids=["UTF-16 DOCTYPE", "Latin-1 declared", "UTF-16 without a mark", "EBCDIC"],
    )
    def test_documents_not_in_utf8_are_refused(self, receiver: Served, body: bytes) -> None:
        answer = receiver.post(body)
        assert answer.status_code == 400
        assert "UTF-8" in answer.text


class TestNothingStalls:
    """Checks run off the event loop with a deadline: one request never holds another."""

    @pytest.fixture
    def stuck(self) -> Iterator[threading.Event]:
        """Set to release checks held by :func:`_holding`."""
        release = threading.Event()
        yield release
        release.set()

    @staticmethod
    def _holding(
        receiver: AlertReceiver, release: threading.Event, entered: threading.Event
    ) -> Callable[[bytes, str | None], Checked]:
        """``receiver.check``, except that a body holding ``HOLD`` waits for ``release``.

        The safe parser leaves no real input that checks for ever, so this stands in
        for one: it is the one thing here that is not the real receiver.
        """
        real = receiver.check

        def check(body: bytes, remote: str | None = None) -> Checked:
            if b"HOLD" in body:
                entered.set()
                release.wait(30)
            return real(body, remote)

        return check

    def test_a_valid_alert_is_answered_while_a_hostile_check_runs(
        self, serve: Callable[..., Served], dsp: Dsp, engine: Engine, stuck: threading.Event
    ) -> None:
        server = serve(check_seconds=1.0)
        entered = threading.Event()
        server.app.receiver.check = self._holding(server.app.receiver, stuck, entered)
        hostile: list[httpx.Response] = []
        poster = threading.Thread(target=lambda: hostile.append(server.post(b"<HOLD/>")))
        poster.start()
        assert entered.wait(10)
        # The hostile check holds a thread; the loop and the other thread still serve.
        assert server.post(dsp.n64()).status_code == 204
        assert httpx.get(server.url("/healthz"), timeout=5).status_code == 200
        poster.join(10)
        (answer,) = hostile
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert "took longer than 1 s" in answer.text
        assert count_rows(engine, "bo_alerts") == 1
        with engine.connect() as conn:
            (rejection,) = backoffice.list_rejections(conn)
        assert rejection.status_code == 503

    def test_concurrent_hostile_and_valid_posts(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        """Every valid alert posted beside a stream of hostile ones is recorded."""
        valid = [dsp.n64(counter=n) for n in range(1, 21)]
        hostile = [DEV_ZERO, b"<" * 100_000, b"\xff\xfe", b"<a>" * 5000] * 5

        def post_all(bodies: list[bytes]) -> list[int]:
            with httpx.Client(timeout=20) as client:
                return [
                    client.post(
                        receiver.url(), content=b, headers={"content-type": "x"}
                    ).status_code
                    for b in bodies
                ]

        results: dict[str, list[int]] = {}
        threads = [
            threading.Thread(target=lambda: results.update(valid=post_all(valid))),
            threading.Thread(target=lambda: results.update(hostile=post_all(hostile))),
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert results["valid"] == [204] * 20
        assert set(results["hostile"]) == {400}
        assert count_rows(engine, "bo_alerts") == 20
        assert time.monotonic() - started < 60  # nobody waited for a client timeout


class TestTheWholeDocumentAgainstTheVersion:
    """Codes and values the endpoint's DUIS version does not allow are refused, not stored."""

    def test_a_code_the_version_lacks(
        self, serve: Callable[..., Served], dsp: Dsp, engine: Engine
    ) -> None:
        receiver = serve(duis_version=DuisVersion.parse("5.0"))
        body = "<sr:X><sr:Y>1</sr:Y></sr:X>"
        answer = receiver.post(dsp.other("N63", body, duis="5.0"))
        assert answer.status_code == 400
        assert "DCCAlertCode" in answer.text
        assert receiver.post(dsp.other("N12", POWER_OUTAGE, duis="5.0")).status_code == 204
        assert count_rows(engine, "bo_alerts") == 1

    def test_a_code_no_version_has(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        answer = receiver.post(dsp.other("N9999", POWER_OUTAGE))
        assert answer.status_code == 400
        assert count_rows(engine, "bo_alerts") == 0

    @pytest.mark.parametrize("version", ["v1.2", "0A0B0C0", "12345678", "ab"])
    def test_any_schema_valid_version_is_recorded_as_signed(
        self, receiver: Served, dsp: Dsp, engine: Engine, version: str
    ) -> None:
        body = (
            f"<sr:CommsHubFirmwareActivation><sr:DeviceID>{CH}</sr:DeviceID>"
            f"<sr:FirmwareVersion>{version}</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>"
        )
        assert receiver.post(dsp.other("N64", body)).status_code == 204
        with engine.connect() as conn:
            view = backoffice.hub_view(conn, CH)
        assert view is not None
        assert view.active_version == version
        assert [e.firmware_version for e in view.history] == [version]

    def test_a_version_longer_than_the_schema_allows(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = (
            f"<sr:CommsHubFirmwareActivation><sr:DeviceID>{CH}</sr:DeviceID>"
            "<sr:FirmwareVersion>0102030405</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>"
        )
        assert receiver.post(dsp.other("N64", body)).status_code == 400
        assert count_rows(engine, "bo_alerts") == 0


class TestBoundedReasons:
    """What a sender wrote is quoted back cut short, in the answer and the rejections table."""

    def test_a_huge_issuer_name(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        signed = dsp.n64()
        start = signed.index(b"<ds:X509IssuerName>") + len(b"<ds:X509IssuerName>")
        end = signed.index(b"</ds:X509IssuerName>")
        answer = receiver.post(signed[:start] + b"CN=" + b"x" * 200_000 + signed[end:])
        assert answer.status_code == 400
        assert len(answer.text) <= REASON_MAX
        with engine.connect() as conn:
            (rejection,) = backoffice.list_rejections(conn)
        assert rejection.reason == answer.text
