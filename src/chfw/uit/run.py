"""Send each case to the endpoint within its time, and judge the answers as DUIS would.

DUIS: 2xx accepts an alert; 4xx refuses it for good (the DSP dead-letters
it); 5xx, a timeout or a dropped connection is temporary (the DSP sends it
again, for ever if the endpoint never decides). So a hostile alert must get a
4xx, and a genuine one a 2xx; anything else fails the case. One exception: a
body too large to read may be refused by closing the connection (its 413 is
often lost in the reset), where the case says so (``Case.closing_refuses``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from chfw import __version__
from chfw.exceptions import ConfigError
from chfw.uit.cases import Case, Expect, Material, Prepared
from chfw.uit.documents import Alert
from chfw.uit.observe import ObservationError, Observer, Recorded
from chfw.uit.report import CaseResult, Report

DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"chfw-uit/{__version__}"
_SHOWN = 160  # characters of an answer's text kept in the report
_READ_MAX = 4096  # bytes of an answer read at most


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one body: a status and the start of its text, or why none came."""

    status: int | None
    text: str = ""  # without a status: why there was no answer, starting "no answer"
    closed: bool = False  # no answer because the endpoint closed or reset the connection

    def shown(self) -> str:
        if self.status is None:
            return self.text
        return f"{self.status} {self.text}".strip()

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status is not None and 400 <= self.status < 500


#: Posts one body within ``timeout`` seconds and says what came back (never raises).
Send = Callable[[bytes, float], Answer]


def check_target(endpoint: str, *, allow_http: bool) -> str:
    """The endpoint URL, refused unless https (or plain http when explicitly allowed)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"endpoint {endpoint!r} is not an http(s) URL with a host")
    if parts.scheme == "http" and not allow_http:
        raise ConfigError(
            f"endpoint {endpoint} is not https: DUIS endpoints speak TLS; give --allow-http "
            "only for a local test endpoint"
        )
    return endpoint


def check_timeout(timeout: float) -> float:
    """A case's time in seconds: more than 0 and at most 600, else ConfigError."""
    if not 0 < timeout <= 600:
        raise ConfigError(f"timeout {timeout:g} s must be more than 0 and at most 600")
    return timeout


def shown_target(endpoint: str) -> str:
    """The endpoint as printed and reported: a password in the URL is replaced by ``***``."""
    parts = urlsplit(endpoint)
    if parts.password is None:
        return endpoint
    netloc = f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[1]}"
    return urlunsplit(parts._replace(netloc=netloc))


class HttpSender:
    """Posts bodies to the endpoint as the DSP does: ``application/xml``, one client.

    Reads at most the first few kilobytes of an answer, and stops reading once
    the time is up: an endpoint that streams an endless answer gets judged on its status.
    """

    def __init__(
        self,
        endpoint: str,
        client: httpx.Client,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint = endpoint
        self._client = client
        self._monotonic = monotonic

    def __call__(self, body: bytes, timeout: float) -> Answer:
        deadline = self._monotonic() + timeout
        headers = {
            "content-type": "application/xml",
            "user-agent": USER_AGENT,
            "accept-encoding": "identity",  # read raw: no decompression bomb in an answer
        }
        try:
            with self._client.stream(
                "POST", self._endpoint, content=body, headers=headers, timeout=timeout
            ) as response:
                head = bytearray()
                for chunk in response.iter_raw():
                    head += chunk
                    if len(head) >= _READ_MAX or self._monotonic() > deadline:
                        break
        except httpx.TimeoutException:
            return Answer(None, f"no answer within {timeout:.3g} s")
        except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # An endpoint that answers 413 from Content-Length and closes resets the
            # connection under the rest of the body: its answer is often lost with it.
            reason = f"no answer: the endpoint closed the connection ({type(exc).__name__}: {exc})"
            return Answer(None, reason[:_SHOWN], closed=True)
        except httpx.TransportError as exc:
            return Answer(None, f"no answer: {type(exc).__name__}: {exc}"[:_SHOWN])
        text = " ".join(bytes(head[:_READ_MAX]).decode("utf-8", "replace").split())
        return Answer(response.status_code, text[:_SHOWN])


def run_cases(
    cases: Sequence[Case],
    material: Material,
    send: Send,
    *,
    observer: Observer | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    monotonic: Callable[[], float] = time.monotonic,
    progress: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Each case in turn: build it, send its bodies within ``timeout`` in all, judge."""
    check_timeout(timeout)
    results = []
    for case in cases:
        prepared = case.prepare(material)
        deadline = monotonic() + timeout
        answers = []
        for body in prepared.bodies:
            left = deadline - monotonic()
            if left <= 0:
                answers.append(Answer(None, f"not sent: the case's {timeout:.3g} s ran out"))
                break
            answers.append(send(body, left))
        result = judge(case, prepared, answers, observer)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def run(
    cases: Sequence[Case],
    material: Material,
    send: Send,
    *,
    target: str,
    now: Callable[[], datetime],
    observer: Observer | None = None,
    observed_by: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[CaseResult], None] | None = None,
) -> Report:
    """The whole run as a :class:`Report`."""
    started = now()
    results = run_cases(
        cases, material, send, observer=observer, timeout=timeout, progress=progress
    )
    version = str(material.maker.duis_version)
    signer = material.maker.signer
    signed_as = f"{signer.issuer_name}, serial {signer.serial_number}"
    return Report(target, version, observed_by, started, now(), tuple(results), signed_as)


def judge(
    case: Case, prepared: Prepared, answers: Sequence[Answer], observer: Observer | None
) -> CaseResult:
    """Pass or fail from the answers, then from the record where an observer can tell."""
    got = "; ".join(answer.shown() for answer in answers)

    def result(passed: bool, note: str = "", not_checked: str | None = None) -> CaseResult:
        return CaseResult(
            case.id,
            case.group,
            case.description,
            case.expect.value,
            prepared.sent,
            got + note,
            passed,
            not_checked,
            str(prepared.alert.response_id),
        )

    complete = len(answers) == len(prepared.bodies)
    accepted = complete and all(answer.accepted for answer in answers)
    refused = complete and all(
        answer.refused or (answer.closed and case.closing_refuses) for answer in answers
    )
    wanted = {
        Expect.ACCEPT: accepted,
        Expect.REFUSE: refused,
        Expect.REFUSE_OR_AS_SIGNED: accepted or refused,
    }[case.expect]
    if not wanted:
        return result(False)
    if observer is None:
        if accepted:
            return result(True, not_checked="whether it was recorded once, as signed")
        return result(True)
    try:
        record = observer.recorded(str(prepared.alert.response_id))
    except ObservationError as exc:
        return result(False, f"; recorded: could not tell ({exc})")
    if accepted:
        problem = _record_problem(record, prepared.alert)
        return result(problem is None, f"; recorded: {problem or 'once, as signed'}")
    return result(record is None, "; recorded: nothing" if record is None else "; yet recorded")


def _record_problem(record: Recorded | None, alert: Alert) -> str | None:
    """Why the record of an accepted alert is wrong, or None when it holds the signed values."""
    if record is None:
        return "nothing (accepted, yet not recorded)"
    if record.copies != 1:
        return f"{record.copies} times"
    if record.device_id != str(alert.device_id):
        return f"DeviceID {record.device_id!r}, signed {str(alert.device_id)!r}"
    if record.firmware_version != alert.firmware_version:
        return f"FirmwareVersion {record.firmware_version!r}, signed {alert.firmware_version!r}"
    return None
