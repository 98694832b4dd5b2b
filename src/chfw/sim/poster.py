"""Post a wave to the intake like a CSP would: batches, bounded concurrency, retries, a rate.

Messages go as hex to ``POST {url}/csp/v1/messages/batch`` with the CSP's
bearer credential, ``concurrency`` batches in flight. 429, 502, 503, 504,
timeouts and connection errors are retried with exponential backoff and
jitter (``Retry-After`` honoured, bounded); a batch that still fails is
counted as failed and posting goes on. Answers that no retry can fix (401
wrong credential, 404 wrong URL, 413 batch too large, ...) stop the run with
a ``ConfigError`` saying what to change.

A retried batch whose first attempt did reach the intake is answered
"duplicate" for what it processed: the counts then show it, as they would for
a real CSP.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from chfw.exceptions import ConfigError, InvalidValueError
from chfw.shared.tls import TlsConfig

BATCH_PATH = "/csp/v1/messages/batch"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
Progress = Callable[[int], None]  # called with the number of messages just answered
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Message = bytes | str  # raw GBCS bytes, or already hex


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in each wait."""

    max_attempts: int = 8
    initial_seconds: float = 0.2
    max_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_seconds < 0 or self.max_seconds < self.initial_seconds:
            raise InvalidValueError("need 0 <= initial_seconds <= max_seconds")

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2 ** (attempt - 1))
        wait = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_seconds))
        return wait


@dataclass
class PostStats:
    """What the intake answered, summed over the run."""

    messages: int = 0  # messages the intake answered for
    batches: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # processed, duplicate, ...
    decisions: Counter[str] = field(default_factory=Counter)  # new_version, failure, ...
    alerts: Counter[str] = field(default_factory=Counter)  # N64, N999 written by the intake
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)  # "503", "ConnectError", ...
    failed_batches: int = 0  # given up after max_attempts
    failed_messages: int = 0
    last_error: str | None = None
    elapsed_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Messages answered per second of the run."""
        return self.messages / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "batches": self.batches,
            "statuses": dict(sorted(self.statuses.items())),
            "decisions": dict(sorted(self.decisions.items())),
            "alerts": dict(sorted(self.alerts.items())),
            "retries": self.retries,
            "retry_reasons": dict(sorted(self.retry_reasons.items())),
            "failed_batches": self.failed_batches,
            "failed_messages": self.failed_messages,
            "last_error": self.last_error,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "messages_per_second": round(self.rate, 1),
        }


class _Pacer:
    """Spaces batch starts so that messages leave at ``rate`` per second on average."""

    def __init__(self, rate: float | None, sleep: Sleep, clock: Clock) -> None:
        self.rate = rate
        self.sleep = sleep
        self.clock = clock
        self.next_start = clock()

    async def wait(self, messages: int) -> None:
        if self.rate is None:
            return
        now = self.clock()
        start = max(now, self.next_start)
        self.next_start = start + messages / self.rate
        if start > now:
            await self.sleep(start - now)


def batch_url(url: str) -> str:
    """The batch endpoint from the intake's base URL (or from the endpoint itself)."""
    base = url.rstrip("/")
    if base.endswith(BATCH_PATH):
        return base
    if base.endswith("/csp/v1/messages"):
        return base + "/batch"
    return base + BATCH_PATH


def _hex(message: Message) -> str:
    if isinstance(message, bytes):
        return message.hex()
    if isinstance(message, str):
        return "".join(message.split())
    raise InvalidValueError(f"a message is bytes or hex text, not {type(message).__name__}")


async def _batches(messages: Iterable[Message], size: int) -> AsyncIterator[list[str]]:
    batch: list[str] = []
    for message in messages:
        batch.append(_hex(message))
        if len(batch) == size:
            yield batch
            batch = []
            await asyncio.sleep(0)  # let the senders run while a large wave is encoded
    if batch:
        yield batch


class _Poster:
    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: Sequence[str],
        credential: str,
        retry: RetryPolicy,
        progress: Progress | None,
        sleep: Sleep,
        seed: int | None,
    ) -> None:
        self.client = client
        self.urls = [batch_url(url) for url in urls]
        self.headers = {
            "Authorization": f"Bearer {credential}",
            "Content-Type": "application/json",
        }
        self.retry = retry
        self.progress = progress
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.stats = PostStats()

    async def send(self, batch: list[str], url: str) -> None:
        body = ('{"messages":["' + '","'.join(batch) + '"]}').encode("ascii")
        for attempt in range(1, self.retry.max_attempts + 1):
            reason, retry_after = await self._attempt(url, body, batch)
            if reason is None:
                return
            self.stats.last_error = reason
            if attempt == self.retry.max_attempts:
                break
            self.stats.retries += 1
            self.stats.retry_reasons[reason.split(":")[0]] += 1
            await self.sleep(self.retry.delay(attempt, self.rng, retry_after))
        self.stats.failed_batches += 1
        self.stats.failed_messages += len(batch)
        if self.progress is not None:
            self.progress(len(batch))

    async def _attempt(
        self, url: str, body: bytes, batch: list[str]
    ) -> tuple[str | None, float | None]:
        """None when the batch was answered; else why it should be retried."""
        try:
            response = await self.client.post(url, content=body, headers=self.headers)
        except httpx.TransportError as exc:  # connection refused/reset, timeouts
            return f"{type(exc).__name__}: {exc}", None
        if response.status_code in RETRY_STATUSES:
            return f"{response.status_code}: {_detail(response)}", _retry_after(response)
        if response.status_code != 200:
            raise ConfigError(_refusal(url, response))
        self._count(url, response, len(batch))
        return None, None

    def _count(self, url: str, response: httpx.Response, sent: int) -> None:
        try:
            results = orjson.loads(response.content)["results"]
            if not isinstance(results, list) or len(results) != sent:
                raise ValueError(f"{len(results)} results for {sent} messages")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{url} answered 200 but not with one result per message ({exc}); "
                "is this chfw's intake?"
            ) from None
        stats = self.stats
        stats.batches += 1
        stats.messages += sent
        for result in results:
            stats.statuses[str(result.get("status"))] += 1
            decision = result.get("decision")
            if decision is not None and result.get("status") == "processed":
                stats.decisions[str(decision)] += 1
            for kind, count in (result.get("alerts") or {}).items():
                if count:
                    stats.alerts[str(kind)] += int(count)
        if self.progress is not None:
            self.progress(sent)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail is not None else response.text
    return text[:200].strip() or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _refusal(url: str, response: httpx.Response) -> str:
    status = response.status_code
    hint = {
        401: "check --credential (create one with `chfw csp add NAME`)",
        403: "this credential may not post messages",
        404: "check --url: it should be the intake's base URL, e.g. http://127.0.0.1:8064",
        413: "lower --batch-size (the intake's intake_batch_max or body limit was exceeded)",
    }.get(status, "the intake refused the batch; retrying will not help")
    return f"{url} answered {status}: {_detail(response)} — {hint}"


async def post_wave_async(
    messages: Iterable[Message],
    url: str | Sequence[str],
    credential: str,
    *,
    batch_size: int = 500,
    concurrency: int = 4,
    rate: float | None = None,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    seed: int | None = None,
    ca_bundle: str | None = None,
) -> PostStats:
    """Post every message; see :func:`post_wave`."""
    if batch_size < 1:
        raise InvalidValueError(f"batch size must be at least 1, got {batch_size}")
    if concurrency < 1:
        raise InvalidValueError(f"concurrency must be at least 1, got {concurrency}")
    if rate is not None and rate <= 0:
        raise InvalidValueError(f"rate must be positive (messages/s), got {rate}")
    own_client = client is None
    if client is None:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            verify=TlsConfig(ca_bundle=ca_bundle).ssl_context(),
        )
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise InvalidValueError("no intake URL to post to")
    poster = _Poster(client, urls, credential, retry or RetryPolicy(), progress, sleep, seed)
    pacer = _Pacer(rate, sleep, clock)
    queue: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=concurrency * 2)
    started = time.perf_counter()

    async def sender(url: str) -> None:
        while (batch := await queue.get()) is not None:
            await poster.send(batch, url)

    try:
        # Sender n posts to intake n mod N, as a load balancer spreading the CSP's
        # connections would: each intake instance gets its share of the batches.
        senders = [
            asyncio.create_task(sender(poster.urls[n % len(poster.urls)]))
            for n in range(concurrency)
        ]
        try:
            async for batch in _batches(messages, batch_size):
                await pacer.wait(len(batch))
                await _put(queue, batch, senders)
            for _ in senders:
                await _put(queue, None, senders)
            await asyncio.gather(*senders)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
    finally:
        if own_client:
            await client.aclose()
    poster.stats.elapsed_seconds = time.perf_counter() - started
    return poster.stats


async def _put(
    queue: asyncio.Queue[list[str] | None],
    item: list[str] | None,
    senders: list[asyncio.Task[None]],
) -> None:
    """Queue ``item``, surfacing a sender's error (e.g. 401) instead of waiting forever."""
    put = asyncio.ensure_future(queue.put(item))
    while not put.done():
        await asyncio.wait([put, *senders], return_when=asyncio.FIRST_COMPLETED)
        for task in senders:
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                put.cancel()
                raise error
    await put


def post_wave(
    messages: Iterable[Message],
    url: str | Sequence[str],
    credential: str,
    *,
    batch_size: int = 500,
    concurrency: int = 4,
    rate: float | None = None,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    seed: int | None = None,
    ca_bundle: str | None = None,
) -> PostStats:
    """Post ``messages`` (GBCS bytes or hex) to the intake at ``url`` in batches.

    ``url`` may list several intake instances: the ``concurrency`` senders are
    spread over them in turn, each keeping to its own. ``rate`` caps messages
    per second (None: as fast as the intake answers); ``progress`` is called
    with the number of messages answered (or given up on) after each batch;
    ``client`` replaces the default httpx client (tests pass one over
    ``httpx.MockTransport``); ``sleep``, ``clock`` and ``seed`` make backoff
    and pacing testable; ``ca_bundle`` verifies an https intake (default: the
    system's CAs). Raises ``ConfigError`` when the intake refuses in a way no
    retry can fix.
    """
    return asyncio.run(
        post_wave_async(
            messages,
            url,
            credential,
            batch_size=batch_size,
            concurrency=concurrency,
            rate=rate,
            progress=progress,
            client=client,
            retry=retry,
            sleep=sleep,
            clock=clock,
            seed=seed,
            ca_bundle=ca_bundle,
        )
    )
