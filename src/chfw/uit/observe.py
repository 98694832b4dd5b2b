"""What the endpoint recorded, where it offers a way to tell; else "not checked".

An HTTP answer says whether the endpoint accepted an alert, not what it
stored: that a replay was counted once, or that a value split by a comment
was recorded whole. An :class:`Observer` answers that by ResponseID: chfw's
own back office (:class:`ChfwBackOffice`, ``--chfw-database``), or any
endpoint's test environment that serves its records as docs/uit.md describes
(:class:`HttpObserver`, ``--observe-url``). Without one, those checks are
reported as not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from sqlalchemy.engine import Engine

from chfw.exceptions import ChfwError
from chfw.shared.db.engine import reading
from chfw.supplier import backoffice

_READ_MAX = 65536  # bytes of a record read at most


class ObservationError(ChfwError):
    """What the endpoint recorded could not be looked up (the case fails, saying why)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One alert as the endpoint recorded it: how many records, and the values it kept."""

    copies: int
    device_id: str | None
    firmware_version: str | None


class Observer(Protocol):
    """Looks up what the endpoint recorded under a ResponseID (None: nothing)."""

    def recorded(self, response_id: str) -> Recorded | None: ...


class ChfwBackOffice:
    """chfw's receiver, observed through its back office database (``--chfw-database``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def recorded(self, response_id: str) -> Recorded | None:
        with reading(self._engine) as conn:
            alert = backoffice.received_alert(conn, response_id)
        if alert is None:
            return None
        # ResponseID is the table's key: a replay adds to `duplicates`, never a second row.
        return Recorded(1, alert.device_id, alert.firmware_version)


class HttpObserver:
    """Records served by the endpoint's test environment: GET ``template`` per ResponseID.

    ``template`` holds ``{response_id}`` (filled in URL-quoted). 404 means nothing
    is recorded under it; 200 carries ``{"copies": n, "device_id": ..., "firmware_version":
    ...}``; anything else raises ObservationError.
    """

    def __init__(
        self, template: str, client: httpx.Client, *, token: str | None = None, timeout: float = 10
    ) -> None:
        if "{response_id}" not in template:
            raise ObservationError(f"--observe-url {template!r} has no {{response_id}} in it")
        self._template = template
        self._client = client
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    def recorded(self, response_id: str) -> Recorded | None:
        url = self._template.replace("{response_id}", quote(response_id, safe=""))
        try:
            with self._client.stream(
                "GET", url, headers=self._headers, timeout=self._timeout
            ) as response:
                body = b""
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > _READ_MAX:
                        raise ObservationError(f"GET {url}: the record is over {_READ_MAX} bytes")
        except httpx.HTTPError as exc:
            raise ObservationError(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ObservationError(f"GET {url} answered {response.status_code}, not 200 or 404")
        return _record(url, body)


def _record(url: str, body: bytes) -> Recorded:
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise ObservationError(f"GET {url}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise ObservationError(f"GET {url}: the answer is not a JSON object")
    copies, device, version = (data.get(k) for k in ("copies", "device_id", "firmware_version"))
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ObservationError(f"GET {url}: copies must be a whole number from 1, got {copies!r}")
    for name, value in (("device_id", device), ("firmware_version", version)):
        if value is not None and not isinstance(value, str):
            raise ObservationError(f"GET {url}: {name} must be a string or null")
    return Recorded(copies, device, version)
