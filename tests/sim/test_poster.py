"""The poster: batches to the intake, retries what is temporary, stops on what is not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from chfw.exceptions import ConfigError, InvalidValueError
from chfw.sim import PostStats, RetryPolicy, post_wave
from chfw.sim.poster import batch_url

CREDENTIAL = "csp-north.s3cret"
URL = "http://intake.test"


def messages(count: int) -> list[bytes]:
    return [index.to_bytes(4, "big") for index in range(count)]


class Intake:
    """A MockTransport handler answering like the intake; ``failures`` scripts bad answers."""

    def __init__(self, failures: list[httpx.Response | Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.seen: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        assert request.url.path == "/csp/v1/messages/batch"
        assert request.headers["authorization"] == f"Bearer {CREDENTIAL}"
        assert request.headers["content-type"] == "application/json"
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        batch = json.loads(request.content)["messages"]
        self.batches.append(batch)
        results = []
        for message in batch:
            duplicate = message in self.seen
            self.seen.add(message)
            results.append(
                {
                    "status": "duplicate" if duplicate else "processed",
                    "decision": "new_version",
                    "alerts": {"N64": 0 if duplicate else 2, "N999": 0 if duplicate else 1},
                }
            )
        return httpx.Response(200, json={"results": results, "counts": {}})


class Sleeps:
    """Records the waits asked for instead of waiting; ``clock`` moves only when they happen."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def run(
    handler: Callable[[httpx.Request], httpx.Response],
    payloads: list[bytes],
    sleeps: Sleeps | None = None,
    **options: object,
) -> PostStats:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sleeps = sleeps or Sleeps()
    return post_wave(
        payloads,
        URL,
        CREDENTIAL,
        client=client,
        sleep=sleeps,
        clock=sleeps.clock,
        seed=1,
        **options,  # type: ignore[arg-type]
    )


class TestBatching:
    """Messages go out as hex in batches of batch_size, each exactly once."""

    def test_batches_and_counts(self) -> None:
        intake = Intake()
        progress: list[int] = []
        stats = run(intake, messages(1234), batch_size=500, progress=progress.append)
        assert sorted(len(batch) for batch in intake.batches) == [234, 500, 500]
        sent = [message for batch in intake.batches for message in batch]
        assert sorted(sent) == sorted(m.hex() for m in messages(1234))
        assert stats.messages == 1234
        assert stats.batches == 3
        assert stats.statuses == {"processed": 1234}
        assert stats.decisions == {"new_version": 1234}
        assert stats.alerts == {"N64": 2468, "N999": 1234}
        assert sum(progress) == 1234

    def test_duplicates_counted_from_the_answers(self) -> None:
        payloads = messages(10) + messages(3)
        stats = run(Intake(), payloads, batch_size=4, concurrency=1)
        assert stats.statuses == {"processed": 10, "duplicate": 3}
        assert stats.alerts["N64"] == 20

    def test_hex_text_is_sent_as_is(self) -> None:
        intake = Intake()
        run(intake, ["df09 02", "AB"], batch_size=10)  # type: ignore[list-item]
        assert intake.batches == [["df0902", "AB"]]

    def test_several_intakes_share_the_batches(self) -> None:
        # Two intake instances (as behind a load balancer): each sender keeps to one,
        # every batch goes to exactly one of them, and both get their share.
        by_host: dict[str, list[list[str]]] = {"a": [], "b": []}
        intake = Intake()

        def handler(request: httpx.Request) -> httpx.Response:
            response = intake(request)
            by_host[request.url.host].append(json.loads(request.content)["messages"])
            return response

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        stats = post_wave(
            messages(100),
            ["http://a:1", "http://b:2/csp/v1/messages"],
            CREDENTIAL,
            client=client,
            batch_size=10,
            concurrency=4,
        )
        assert stats.messages == 100
        assert by_host["a"]
        assert by_host["b"]
        sent = sorted(m for batches in by_host.values() for batch in batches for m in batch)
        assert sent == sorted(m.hex() for m in messages(100))

    def test_no_intake_is_refused(self) -> None:
        with pytest.raises(InvalidValueError, match="no intake URL"):
            post_wave(messages(1), [], CREDENTIAL)

    def test_batch_url_from_any_form(self) -> None:
        expected = "http://h:1/csp/v1/messages/batch"
        for given in ("http://h:1", "http://h:1/", "http://h:1/csp/v1/messages", expected):
            assert batch_url(given) == expected

    def test_concurrency_is_bounded(self) -> None:
        in_flight = 0
        peak = 0

        async def slow(request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            count = len(json.loads(request.content)["messages"])
            return httpx.Response(200, json={"results": [{"status": "processed"}] * count})

        stats = run(slow, messages(100), batch_size=5, concurrency=3)  # type: ignore[arg-type]
        assert stats.messages == 100
        assert 1 < peak <= 3


class TestRetries:
    """429/503 and connection errors are retried with growing, bounded waits."""

    def test_503_then_success(self) -> None:
        intake = Intake([httpx.Response(503, json={"detail": "busy"})] * 2)
        sleeps = Sleeps()
        stats = run(intake, messages(7), sleeps, batch_size=10)
        assert stats.messages == 7
        assert stats.statuses == {"processed": 7}
        assert stats.retries == 2
        assert stats.retry_reasons == {"503": 2}
        assert intake.attempts == 3
        assert len(sleeps.waits) == 2
        assert stats.failed_messages == 0

    def test_connection_error_is_retried(self) -> None:
        intake = Intake([httpx.ConnectError("refused")])
        stats = run(intake, messages(3), batch_size=10)
        assert stats.retry_reasons == {"ConnectError": 1}
        assert stats.messages == 3

    def test_waits_grow_and_stay_bounded(self) -> None:
        policy = RetryPolicy(max_attempts=7, initial_seconds=1.0, max_seconds=8.0)
        intake = Intake([httpx.Response(429)] * 6)
        sleeps = Sleeps()
        run(intake, messages(1), sleeps, retry=policy)
        assert len(sleeps.waits) == 6
        assert all(0.5 <= wait <= 8.0 for wait in sleeps.waits)
        assert sleeps.waits[-1] >= 4.0 > sleeps.waits[0]

    def test_retry_after_is_honoured_up_to_the_bound(self) -> None:
        policy = RetryPolicy(initial_seconds=0.1, max_seconds=30.0)
        intake = Intake(
            [
                httpx.Response(503, headers={"Retry-After": "12"}),
                httpx.Response(503, headers={"Retry-After": "9999"}),
            ]
        )
        sleeps = Sleeps()
        run(intake, messages(1), sleeps, retry=policy)
        assert sleeps.waits[0] >= 12
        assert sleeps.waits[1] == 30.0

    def test_gives_up_after_max_attempts_and_goes_on(self) -> None:
        intake = Intake([httpx.Response(503)] * 3)
        stats = run(intake, messages(15), batch_size=10, concurrency=1, retry=RetryPolicy(3))
        assert stats.failed_batches == 1
        assert stats.failed_messages == 10
        assert stats.messages == 5
        assert stats.last_error is not None
        assert stats.last_error.startswith("503")


class TestRefusals:
    """Answers no retry can fix stop the run with advice."""

    @pytest.mark.parametrize(
        ("status", "advice"),
        [(401, "--credential"), (404, "--url"), (413, "--batch-size"), (422, "refused")],
    )
    def test_refusal_raises_config_error(self, status: int, advice: str) -> None:
        intake = Intake([httpx.Response(status, json={"detail": "no"})])
        with pytest.raises(ConfigError, match=advice):
            run(intake, messages(2000), batch_size=10)
        assert intake.attempts < 50  # stopped early, not after every batch

    def test_answer_without_one_result_per_message(self) -> None:
        def wrong(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"results": []})

        with pytest.raises(ConfigError, match="one result per message"):
            run(wrong, messages(3))


class TestRate:
    """A rate spaces batches so messages leave at that many per second."""

    def test_waits_add_up_to_the_rate(self) -> None:
        sleeps = Sleeps()
        run(Intake(), messages(1000), sleeps, batch_size=100, concurrency=1, rate=500.0)
        # 10 batches of 100 at 500/s: the last starts ~1.8 s after the first.
        assert sum(sleeps.waits) == pytest.approx(1.8)

    @pytest.mark.parametrize("options", [{"rate": 0.0}, {"batch_size": 0}, {"concurrency": 0}])
    def test_bad_options(self, options: dict[str, float]) -> None:
        with pytest.raises(InvalidValueError):
            run(Intake(), messages(1), **options)
