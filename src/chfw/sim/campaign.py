"""A CSP that takes its work from a DCC campaign (issue 22): ask, send CS06, report, repeat.

The simulated CSP asks the DSP's work list
(``GET /csp/v1/campaigns/NAME/work?limit=N``) until it hands out nothing more,
posts the answers of those hubs (their part of a :class:`chfw.sim.wave.Wave`,
duplicates and future-dated alerts included) through the intake as always
(:func:`chfw.sim.poster.post_wave`), then asks again: the next phase opens once
the outcomes carry the open one past its success threshold. It stops when the
campaign is no longer running, or when a round hands out nothing (the campaign
waits for outcomes that will not come from this CSP, e.g. under its success
threshold).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import httpx

from chfw.core.domain import DeviceId
from chfw.exceptions import ConfigError
from chfw.shared.tls import TlsConfig
from chfw.sim.poster import Message, PostStats, Progress, post_wave

WORK_PATH = "/csp/v1/campaigns/{name}/work"

MessagesFor = Callable[[AbstractSet[DeviceId]], Iterable[Message]]
"""The GBCS answers of these hubs, in posting order (e.g. ``Wave.messages(only=...)``)."""


@dataclass
class CampaignRun:
    """What the CSP did: each round's hubs, the intake's answers, the state it ended in."""

    campaign: str
    state: str = "draft"
    rounds: list[int] = field(default_factory=list)  # hubs handed out per round
    stats: PostStats = field(default_factory=PostStats)

    @property
    def hubs(self) -> int:
        return sum(self.rounds)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "state": self.state,
            "rounds": list(self.rounds),
            "hubs": self.hubs,
        }


def take_work(
    client: httpx.Client, url: str, credential: str, name: str, limit: int
) -> tuple[str, list[DeviceId]]:
    """One work-list request: the campaign's state and the hubs now dispatched to this CSP."""
    answer = client.get(
        url.rstrip("/") + WORK_PATH.format(name=name),
        params={"limit": limit},
        headers={"Authorization": f"Bearer {credential}"},
    )
    if answer.status_code != 200:
        raise ConfigError(
            f"{answer.request.url} answered {answer.status_code}: {answer.text[:200]} "
            "(is the campaign created, and the credential the CSP's?)"
        )
    body = answer.json()
    return str(body["state"]), [DeviceId.parse(d) for d in body["device_ids"]]


def _add(total: PostStats, part: PostStats) -> None:
    total.messages += part.messages
    total.batches += part.batches
    total.statuses.update(part.statuses)
    total.decisions.update(part.decisions)
    total.alerts.update(part.alerts)
    total.retries += part.retries
    total.retry_reasons.update(part.retry_reasons)
    total.failed_batches += part.failed_batches
    total.failed_messages += part.failed_messages
    total.last_error = part.last_error or total.last_error
    total.elapsed_seconds += part.elapsed_seconds


def run_campaign(
    messages_for: MessagesFor,
    urls: Sequence[str],
    credential: str,
    name: str,
    *,
    work_limit: int = 1000,
    batch_size: int = 500,
    concurrency: int = 4,
    progress: Progress | None = None,
    on_round: Callable[[int], None] | None = None,
    ca_bundle: str | None = None,
) -> CampaignRun:
    """Work through campaign ``name`` as its CSP; see the module's docstring.

    ``on_round`` is called with the number of hubs handed out in each round;
    ``ca_bundle`` verifies an https intake (default: the system's CAs).
    """
    run = CampaignRun(name)
    verify = TlsConfig(ca_bundle=ca_bundle).ssl_context()
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), verify=verify) as client:
        while True:
            handed: set[DeviceId] = set()
            while True:
                state, devices = take_work(client, urls[0], credential, name, work_limit)
                run.state = state
                handed.update(devices)
                if not devices:
                    break
            if not handed:
                return run
            run.rounds.append(len(handed))
            if on_round is not None:
                on_round(len(handed))
            part = post_wave(
                messages_for(handed),
                urls,
                credential,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=progress,
                ca_bundle=ca_bundle,
            )
            _add(run.stats, part)
