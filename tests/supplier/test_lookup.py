"""The N999 follow-up: fetch the version from the DSP's inventory, retry until it comes."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_response
from chfw.dsp.intake import create_app
from chfw.dsp.store import inventory_access
from chfw.dsp.store.schema import outbox
from chfw.exceptions import InvalidValueError
from chfw.shared.config import Settings
from chfw.shared.db.engine import create_engine_for
from chfw.shared.retry import RetryPolicy
from chfw.supplier.app import create_receiver_app
from chfw.supplier.lookup import (
    InventoryClient,
    InventoryLookupError,
    LookupWorker,
    count_pending,
    run_with,
)
from chfw.supplier.pipeline import ReceiverConfig
from chfw.supplier.schema import bo_hubs
from tests.live import running
from tests.small_dsp import BOB, CH1, TRUST, build_dsp
from tests.supplier.helpers import free_port
from tests.supplier.recorded import START, device, hub_state, record

DSP_URL = "https://dsp.test"
TOKEN = "chfw_su_90b3d51f30010001_" + "s" * 43
FAST = RetryPolicy(initial=0.02, maximum=0.1, horizon=math.inf)

Handler = Callable[[httpx.Request], httpx.Response]


def entry(hub: DeviceId, version: str | None) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "device_id": str(hub),
            "firmware_version": version,
            "firmware_changed_at": None,
            "csp_region": "north",
            "status": "commissioned",
        },
    )


def client_for(handler: Handler) -> InventoryClient:
    return InventoryClient(DSP_URL, TOKEN, transport=httpx.MockTransport(handler))


def fetch(handler: Handler, hub: DeviceId) -> FirmwareVersion | None:
    async def go() -> FirmwareVersion | None:
        async with client_for(handler) as client:
            return await client.fetch(hub)

    return asyncio.run(go())


class TestInventoryClient:
    """fetch() asks the DSP as our Service User and turns every failure into one error."""

    def test_version_from_the_entry(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return entry(CH1, "02010300")

        assert fetch(handler, CH1) == FirmwareVersion.parse("02010300")
        (request,) = seen
        assert str(request.url) == "https://dsp.test/su/v1/inventory/00-1D-A1-00-00-00-00-01"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"

    def test_no_version_recorded_is_none(self) -> None:
        assert fetch(lambda _: entry(CH1, None), CH1) is None

    @pytest.mark.parametrize(
        ("answer", "expected"),
        [
            (httpx.Response(401, json={"detail": "token not recognised"}), "chfw users token"),
            (httpx.Response(404, json={"detail": "no CH"}), "Responsible Supplier"),
            (httpx.Response(503, text="maintenance"), "answered 503: maintenance"),
            (httpx.Response(200, text="<html/>"), "not an inventory entry"),
            (httpx.Response(200, json={"firmware_version": "XYZ"}), "not an inventory entry"),
            (httpx.Response(302, headers={"location": "/x"}), "answered 302"),
        ],
    )
    def test_failures(self, answer: httpx.Response, expected: str) -> None:
        with pytest.raises(InventoryLookupError, match=expected):
            fetch(lambda _: answer, CH1)

    def test_network_failure(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        with pytest.raises(InventoryLookupError, match="connection refused"):
            fetch(handler, CH1)

    def test_configuration_is_checked(self) -> None:
        with pytest.raises(InvalidValueError, match="http"):
            InventoryClient("dsp.test", TOKEN)
        with pytest.raises(InvalidValueError, match="chfw users token"):
            InventoryClient(DSP_URL, " ")


class Dsp:
    """A scripted inventory: per CH a queue of answers, then the last one again."""

    def __init__(self) -> None:
        self.answers: dict[str, list[httpx.Response]] = {}
        self.requests: list[str] = []

    def script(self, hub: DeviceId, *answers: httpx.Response) -> None:
        self.answers[str(hub)] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        hub = request.url.path.rsplit("/", 1)[-1]
        self.requests.append(hub)
        queue = self.answers.get(hub, [httpx.Response(404)])
        return queue.pop(0) if len(queue) > 1 else queue[0]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def worker_for(
    engine: Engine, dsp: Dsp, clock: Clock | None = None, **options: Any
) -> LookupWorker:
    return LookupWorker(
        engine,
        client_for(dsp),
        backoff=RetryPolicy(initial=10.0, maximum=60.0, horizon=math.inf),
        clock=clock or Clock(),
        **options,
    )


class TestSweep:
    """run_once() looks up every pending CH that is due, records versions and failures."""

    def test_fetched_version_is_recorded(self, engine: Engine) -> None:
        hub = device(1)
        assert record(engine, hub, None, START).lookup_needed
        dsp = Dsp()
        dsp.script(hub, entry(hub, "0A0B0C0D"))
        stats = asyncio.run(worker_for(engine, dsp).run_once())
        assert (stats.fetched, stats.failed) == (1, 0)
        view = hub_state(engine, hub)
        assert view.active_version == "0A0B0C0D"
        assert not view.lookup_pending
        (event,) = view.history
        assert (event.firmware_version, event.version_source) == ("0A0B0C0D", "inventory")
        # Nothing is pending any more: a second sweep asks the DSP nothing.
        asyncio.run(worker_for(engine, dsp).run_once())
        assert dsp.requests == [str(hub)]

    def test_failure_is_recorded_and_retried_after_the_backoff(self, engine: Engine) -> None:
        hub = device(2)
        record(engine, hub, None, START)
        dsp = Dsp()
        dsp.script(hub, httpx.Response(503, text="down"), entry(hub, "0102"))
        clock = Clock()
        worker = worker_for(engine, dsp, clock)

        async def scenario() -> None:
            first = await worker.run_once()
            assert (first.fetched, first.failed) == (0, 1)
            view = hub_state(engine, hub)
            assert view.lookup_pending
            assert view.lookup_error is not None
            assert "answered 503" in view.lookup_error
            retry_at = worker.retry_at(hub)
            assert retry_at is not None
            assert 0 < retry_at <= 10.0
            # Not due yet: the sweep leaves it alone.
            assert (await worker.run_once()).failed == 0
            assert dsp.requests == [str(hub)]
            clock.now = retry_at
            second = await worker.run_once()
            assert (second.fetched, second.failed) == (1, 0)

        asyncio.run(scenario())
        view = hub_state(engine, hub)
        assert (view.active_version, view.lookup_pending) == ("0102", False)
        with engine.connect() as conn:
            attempts = conn.execute(
                sa.select(bo_hubs.c.lookup_attempts).where(bo_hubs.c.device_id == hub.hex)
            ).scalar_one()
        assert attempts == 1
        assert worker.retry_at(hub) is None

    def test_backoff_grows_with_failures(self, engine: Engine) -> None:
        hub = device(3)
        record(engine, hub, None, START)
        dsp = Dsp()
        dsp.script(hub, httpx.Response(500))
        clock = Clock()
        worker = worker_for(engine, dsp, clock)
        caps = []

        async def scenario() -> None:
            for _ in range(4):
                await worker.run_once()
                retry_at = worker.retry_at(hub)
                assert retry_at is not None
                caps.append(retry_at - clock.now)
                clock.now = retry_at

        asyncio.run(scenario())
        assert len(dsp.requests) == 4
        for failures, delay in enumerate(caps, start=1):
            assert 0 < delay <= min(60.0, 10.0 * 2 ** (failures - 1))

    def test_no_version_at_the_dsp_yet_is_a_failure(self, engine: Engine) -> None:
        hub = device(4)
        record(engine, hub, None, START)
        dsp = Dsp()
        dsp.script(hub, entry(hub, None))
        stats = asyncio.run(worker_for(engine, dsp).run_once())
        assert stats.failed == 1
        view = hub_state(engine, hub)
        assert view.lookup_pending
        assert view.lookup_error is not None
        assert "no firmware version" in view.lookup_error

    def test_every_pending_ch_across_pages(self, engine: Engine) -> None:
        hubs = [device(10 + n) for n in range(5)]
        dsp = Dsp()
        for n, hub in enumerate(hubs):
            record(engine, hub, None, START)
            dsp.script(hub, entry(hub, f"01{n:02X}"))
        record(engine, device(20), "0300", START)  # an N64: nothing to fetch
        stats = asyncio.run(worker_for(engine, dsp, page_size=2, concurrency=2).run_once())
        assert stats.fetched == 5
        assert sorted(dsp.requests) == sorted(str(hub) for hub in hubs)
        with engine.connect() as conn:
            assert count_pending(conn) == 0
        assert [hub_state(engine, hub).active_version for hub in hubs] == [
            f"01{n:02X}" for n in range(5)
        ]

    def test_a_newer_n64_settles_the_ch_and_its_backoff(self, engine: Engine) -> None:
        hub = device(30)
        record(engine, hub, None, START)
        dsp = Dsp()
        dsp.script(hub, httpx.Response(500))
        worker = worker_for(engine, dsp)

        async def scenario() -> None:
            await worker.run_once()
            assert worker.retry_at(hub) is not None
            record(engine, hub, "0500", START.replace(hour=9))
            await worker.run_once()

        asyncio.run(scenario())
        assert worker.retry_at(hub) is None
        assert len(dsp.requests) == 1
        assert hub_state(engine, hub).active_version == "0500"


class TestRunLoop:
    """run() serves notifications at once, sweeps periodically, and stops when asked."""

    def test_notify_wakes_the_worker_and_stop_ends_it(self, engine: Engine) -> None:
        hub = device(40)
        dsp = Dsp()
        dsp.script(hub, entry(hub, "0707"))
        worker = LookupWorker(engine, client_for(dsp), sweep_seconds=3600.0)

        async def scenario() -> None:
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(0.05)  # the start-up sweep finds nothing
            assert dsp.requests == []
            record(engine, hub, None, START)
            # From another thread, as the receiver's request handlers call it.
            await asyncio.to_thread(worker.notify, hub)
            await until(lambda: hub_state(engine, hub).active_version == "0707")
            worker.stop()
            await asyncio.wait_for(task, timeout=10)

        asyncio.run(scenario())
        assert dsp.requests == [str(hub)]
        assert worker.totals.fetched == 1

    def test_start_up_sweep_does_what_a_restart_left(self, engine: Engine) -> None:
        hub = device(41)
        record(engine, hub, None, START)
        dsp = Dsp()
        dsp.script(hub, entry(hub, "0808"))
        worker = LookupWorker(engine, client_for(dsp), sweep_seconds=3600.0)

        async def scenario() -> None:
            task = asyncio.create_task(worker.run())
            await until(lambda: not hub_state(engine, hub).lookup_pending)
            worker.stop()
            await asyncio.wait_for(task, timeout=10)

        asyncio.run(scenario())
        assert hub_state(engine, hub).active_version == "0808"

    def test_failed_lookups_are_retried_without_a_sweep(self, engine: Engine) -> None:
        hub = device(42)
        record(engine, hub, None, START)
        dsp = Dsp()
        dsp.script(hub, httpx.Response(502), httpx.Response(502), entry(hub, "0909"))
        worker = LookupWorker(engine, client_for(dsp), backoff=FAST, sweep_seconds=3600.0)

        async def scenario() -> None:
            task = asyncio.create_task(worker.run())
            await until(lambda: hub_state(engine, hub).active_version == "0909")
            worker.stop()
            await asyncio.wait_for(task, timeout=10)

        asyncio.run(scenario())
        assert dsp.requests == [str(hub)] * 3


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- end to end: a real DSP intake and a real receiver, both served on 127.0.0.1 -------------


@contextmanager
def served(app: Any, port: int) -> Iterator[str]:
    """Serve ``app`` with its lifespan (the lookup worker runs in it) until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    with running(config):
        yield f"http://127.0.0.1:{port}"


class Estate:
    """The DSP side of tests/small_dsp.py on its own database, with BOB's (DUIS 5.0) token."""

    def __init__(self, path: Path, template: Path) -> None:
        shutil.copyfile(template, path)
        self.engine = create_engine_for(f"sqlite:///{path}")
        self.dsp = build_dsp(self.engine)
        with self.engine.begin() as conn:
            self.token = inventory_access.issue_token(conn, BOB)
        self.app = create_app(Settings(), self.dsp.service)

    def activate(self, version: FirmwareVersion) -> bytes:
        """A CSP reports CH1's activation; return the N999 the DSP made for BOB."""
        message = encode_response(
            device_id=CH1,
            recipient=Eui64.parse("90-B3-D5-1F-30-01-00-00"),
            counter=1,
            result=ActivationResult.SUCCESS,
            firmware_version=version,
        )
        (result,) = self.dsp.service.submit([message], "north-csp")
        assert result.alerts == {"N64": 1, "N999": 1}
        with self.engine.connect() as conn:
            document: bytes = conn.execute(
                sa.select(outbox.c.document).where(
                    outbox.c.user_id == BOB.hex, outbox.c.alert_code == "N999"
                )
            ).scalar_one()
        return document


@pytest.fixture
def estate(tmp_path: Path, migrated_template: Path) -> Iterator[Estate]:
    inventory_access.clear_cache()
    made = Estate(tmp_path / "dsp.db", migrated_template)
    yield made
    made.engine.dispose()
    inventory_access.clear_cache()


def bob_receiver(engine: Engine, dsp_url: str, token: str) -> Any:
    """BOB's receiver: trusts the DSP, follows N999s up through its inventory endpoint."""
    worker = LookupWorker(engine, InventoryClient(dsp_url, token), backoff=FAST)
    config = ReceiverConfig(trust=TRUST, on_lookup_needed=worker.notify)
    app = create_receiver_app(config, engine)
    run_with(app, worker)
    return app


class TestN999EndToEnd:
    """A signed N999 from the DSP ends with the version the DSP's inventory holds."""

    V1 = FirmwareVersion.parse("02010300")

    def test_version_fetched_and_recorded(self, engine: Engine, estate: Estate) -> None:
        n999 = estate.activate(self.V1)
        with (
            served(estate.app, free_port()) as dsp_url,
            served(bob_receiver(engine, dsp_url, estate.token), free_port()) as receiver_url,
        ):
            response = httpx.post(
                receiver_url, content=n999, headers={"content-type": "application/xml"}
            )
            assert response.status_code == 204, response.text
            wait_for(lambda: not hub_state(engine, CH1).lookup_pending)
        view = hub_state(engine, CH1)
        assert view.active_version == "02010300"
        (event,) = view.history
        assert (event.alert_code, event.version_source) == ("N999", "inventory")
        assert event.firmware_version == "02010300"

    def test_dsp_down_at_first_is_retried_until_it_answers(
        self, engine: Engine, estate: Estate
    ) -> None:
        n999 = estate.activate(self.V1)
        dsp_port = free_port()
        dsp_url = f"http://127.0.0.1:{dsp_port}"
        with served(bob_receiver(engine, dsp_url, estate.token), free_port()) as receiver_url:
            response = httpx.post(
                receiver_url, content=n999, headers={"content-type": "application/xml"}
            )
            assert response.status_code == 204, response.text
            wait_for(lambda: attempts(engine, CH1) >= 2)  # refused twice: the DSP is down
            view = hub_state(engine, CH1)
            assert view.lookup_pending
            assert view.active_version is None
            assert view.lookup_error is not None
            assert dsp_url in view.lookup_error
            with served(estate.app, dsp_port):
                wait_for(lambda: not hub_state(engine, CH1).lookup_pending)
        view = hub_state(engine, CH1)
        assert view.active_version == "02010300"
        assert view.lookup_error is None
        assert view.history[0].version_source == "inventory"

    def test_replayed_n999_asks_nothing_more(self, engine: Engine, estate: Estate) -> None:
        n999 = estate.activate(self.V1)
        with (
            served(estate.app, free_port()) as dsp_url,
            served(bob_receiver(engine, dsp_url, estate.token), free_port()) as receiver_url,
        ):
            for _ in range(2):
                response = httpx.post(
                    receiver_url, content=n999, headers={"content-type": "application/xml"}
                )
                assert response.status_code == 204
            wait_for(lambda: not hub_state(engine, CH1).lookup_pending)
        assert len(hub_state(engine, CH1).history) == 1


def attempts(engine: Engine, hub: DeviceId) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(bo_hubs.c.lookup_attempts).where(bo_hubs.c.device_id == hub.hex)
            ).scalar_one_or_none()
            or 0
        )


def test_json_of_an_entry_is_what_the_client_reads() -> None:
    """The client reads the field the DSP's endpoint writes (one name on both sides)."""
    from chfw.dsp.intake.inventory_api import InventoryEntry

    assert "firmware_version" in InventoryEntry.model_fields
    assert json.loads(entry(CH1, "01").content)["firmware_version"] == "01"


class TestSharedBackoff:
    """A failure of the DSP as a whole pauses every look-up behind one back-off."""

    def test_refused_token_pauses_all_then_one_probe_resumes(self, engine: Engine) -> None:
        hubs = [device(50 + n) for n in range(5)]
        for hub in hubs:
            record(engine, hub, None, START)
        refusing = [True]
        asked: list[str] = []

        def dsp(request: httpx.Request) -> httpx.Response:
            hub = request.url.path.rsplit("/", 1)[-1]
            asked.append(hub)
            return httpx.Response(401) if refusing[0] else entry(DeviceId.parse(hub), "0505")

        clock = Clock()
        worker = LookupWorker(
            engine,
            client_for(dsp),
            backoff=RetryPolicy(initial=10.0, maximum=60.0, horizon=math.inf),
            clock=clock,
            concurrency=1,
        )

        async def scenario() -> None:
            first = await worker.run_once()
            assert (first.fetched, first.failed, first.waiting) == (0, 1, 4)
            assert worker.paused()
            assert worker.dsp_problem is not None
            assert "refused our token (401)" in worker.dsp_problem
            retry_at = worker.retry_at(hubs[3])  # never asked: waits for the DSP's pause
            assert retry_at is not None
            assert (await worker.run_once()).waiting == 5  # still paused: nothing asked
            clock.now = retry_at
            probe = await worker.run_once()  # one CH asked, refused again: paused again
            assert (probe.fetched, probe.failed, probe.waiting) == (0, 1, 4)
            refusing[0] = False
            clock.now = worker.retry_at(hubs[3]) or math.inf
            recovered = await worker.run_once()
            assert (recovered.fetched, recovered.failed, recovered.waiting) == (5, 0, 0)
            assert worker.dsp_problem is None

        asyncio.run(scenario())
        assert len(asked) == 1 + 1 + 5  # not one request per CH per retry
        with engine.connect() as conn:
            assert count_pending(conn) == 0

    def test_404_is_the_chs_own(self, engine: Engine) -> None:
        hub, other = device(60), device(61)
        record(engine, hub, None, START)
        record(engine, other, None, START)
        dsp = Dsp()
        dsp.script(other, entry(other, "0606"))
        worker = worker_for(engine, dsp)
        stats = asyncio.run(worker.run_once())
        assert (stats.fetched, stats.failed, stats.waiting) == (1, 1, 0)
        assert not worker.paused()

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (httpx.ConnectError("All connection attempts failed"), "is it running"),
            (
                httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
                "--dsp-ca-bundle",
            ),
            (httpx.ReadTimeout("timed out"), "did not answer in time"),
        ],
    )
    def test_network_errors_say_what_to_check(self, error: Exception, expected: str) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise error

        with pytest.raises(InventoryLookupError, match=expected) as caught:
            fetch(handler, CH1)
        assert caught.value.whole_dsp
