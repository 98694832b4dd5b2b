"""The DCC's campaigns that touch this supplier's CHs, as the DSP tells them, and holds.

The DSP answers ``GET /su/v1/campaigns`` with each campaign's status counted over
this Service User's hubs only, and ``POST /su/v1/campaigns/NAME/holds`` holds
hubs back from the phases to come (docs/campaigns.md, "A supplier"). Nothing is
stored here: the dashboard asks the DSP each time, and says so plainly when it
cannot (no DSP configured, unreachable, token refused, an answer that makes no
sense) rather than showing stale figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from chfw.supplier.dsp_client import DspClient, snippet

LIST_PATH = "/su/v1/campaigns"
HOLDS_PATH = "/su/v1/campaigns/{name}/holds"
COUNTS = ("size", "dispatched", "succeeded", "failed", "unconfirmed", "held")
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class PhaseView:
    """One phase: its label and state (the campaign's), counts over our hubs."""

    label: str
    state: str
    counts: tuple[int, ...]  # in COUNTS order


@dataclass(frozen=True, slots=True)
class CampaignView:
    name: str
    target_version: str
    state: str
    reason: str
    phases: tuple[PhaseView, ...]


@dataclass(frozen=True, slots=True)
class Campaigns:
    """What the page shows: the campaigns, or why there are none to show."""

    campaigns: tuple[CampaignView, ...] = ()
    problem: str | None = None


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not text")
    return value


def _count(raw: dict[str, Any], name: str) -> int:
    value = raw[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{name} is not a count")
    return value


def parse_campaign(raw: Any) -> CampaignView:
    """One status from the DSP; TypeError/KeyError/ValueError when it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("phases"), list):
        raise TypeError("a campaign is not an object with phases")
    phases = tuple(
        PhaseView(_text(p, "label"), _text(p, "state"), tuple(_count(p, c) for c in COUNTS))
        for p in raw["phases"]
    )
    return CampaignView(
        name=_text(raw, "name"),
        target_version=_text(raw, "target_version"),
        state=_text(raw, "state"),
        reason=str(raw.get("reason") or ""),
        phases=phases,
    )


def read_campaigns(client: DspClient | None) -> Campaigns:
    """The campaigns touching our hubs, newest first; a problem instead when there are none
    to show."""
    if client is None:
        return Campaigns(
            problem="No DSP is configured: start the receiver with --dsp-url and --dsp-token "
            "to see the DCC's campaigns."
        )
    where = f"GET {client.base_url}{LIST_PATH}"
    try:
        response = client.get(LIST_PATH)
    except httpx.HTTPError as exc:
        return Campaigns(problem=f"{where}: {exc or type(exc).__name__}")
    if response.status_code != 200:
        return Campaigns(problem=f"{where} answered {response.status_code}: {snippet(response)}")
    try:
        found = tuple(parse_campaign(raw) for raw in response.json()["campaigns"])
    except (ValueError, KeyError, TypeError) as exc:
        return Campaigns(problem=f"{where}: the answer is not a campaign list ({exc})")
    return Campaigns(found)


def device_list(text: str) -> list[str]:
    """Device IDs from a text box: separated by spaces, commas, semicolons or new lines."""
    return [part for part in _SEPARATORS.split(text.strip()) if part]


def place_holds(client: DspClient | None, name: str, device_ids: list[str], reason: str) -> str:
    """Ask the DSP to hold these hubs out of the campaign; what happened, in one sentence."""
    if client is None:
        return "No DSP is configured: nothing held."
    if not device_ids or not reason.strip():
        return "Nothing held: give at least one Device ID and a reason."
    try:
        response = client.post(
            HOLDS_PATH.format(name=quote(name, safe="")),
            {"device_ids": device_ids, "reason": reason.strip()},
        )
    except httpx.HTTPError as exc:
        return f"Nothing held: the DSP could not be reached ({exc or type(exc).__name__})."
    if response.status_code != 200:
        return f"Nothing held: the DSP answered {response.status_code}: {_detail(response)}"
    try:
        body = response.json()
        held = [str(d) for d in body["held"]]
        refused = [f"{item['device_id']} ({item['reason']})" for item in body["not_held"]]
    except (ValueError, KeyError, TypeError):
        return f"The DSP's answer makes no sense: {snippet(response)}"
    sentence = f"Held {len(held)} CH(s) out of {name}"
    sentence += f": {', '.join(held)}." if held else "."
    if refused:
        sentence += f" Not held: {', '.join(refused)}."
    return sentence


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return snippet(response)
    return detail if isinstance(detail, str) else snippet(response)
