"""The demo's wave as a DCC campaign (issue 22): a pilot phase, then the rest.

The DSP's operator plans it (:func:`start_campaign`); the simulated CSP takes each phase's
hubs from the work list and posts their part of the wave (:func:`phase_messages`); the
summary shows the phases as the DSP counted them (:func:`campaign_summary`).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

import sqlalchemy as sa

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.dsp.store import campaigns
from chfw.shared.db.engine import reading
from chfw.sim.campaign import CampaignRun
from chfw.sim.estate import SyntheticEstate
from chfw.sim.wave import Wave

CAMPAIGN_NAME = "demo-wave"
campaign_work_limit = 10_000  # hubs per work-list request (the API's most)
# The wave fails ~8 % of hubs: a 25 % error threshold lets it through, 80 % succeeded
# opens the rest after the pilot.
CAMPAIGN_GATES = Gates(error_threshold=25, min_sample=50, success_threshold=80)


def campaign_phases(hubs: int) -> list[PhaseSpec]:
    """A pilot of 5 % of the estate (at least 100 CHs, so that its gates have a sample),
    then the rest; one phase for an estate too small to split."""
    pilot = min(hubs - 1, max(100, round(hubs * 0.05)))
    if pilot < 1:
        return [PhaseSpec.parse("all=rest")]
    return [PhaseSpec.parse(f"pilot={pilot}"), PhaseSpec.parse("rest=rest")]


def start_campaign(
    engine: sa.Engine,
    synthetic: SyntheticEstate,
    target: FirmwareVersion,
    *,
    single_phase: bool = False,
) -> None:
    """The wave as a DCC campaign over the whole estate: a pilot phase, then the rest."""
    with engine.begin() as conn:
        campaigns.create(
            conn,
            CAMPAIGN_NAME,
            target,
            [hub.device_id for hub in synthetic],
            [PhaseSpec.parse("all=rest")] if single_phase else campaign_phases(len(synthetic)),
            CAMPAIGN_GATES,
            actor="chfw demo",
            now=utc_now(),
        )
        campaigns.change_state(conn, CAMPAIGN_NAME, "start", actor="chfw demo", now=utc_now())


def campaign_summary(engine: sa.Engine, run: CampaignRun) -> dict[str, Any]:
    """The campaign's status as the DSP has it, and the rounds the CSP worked in."""
    with reading(engine) as conn:
        status = campaigns.status(conn, CAMPAIGN_NAME, utc_now()).as_json()
    status["csp_rounds"] = run.rounds
    return status


Prepared = list[tuple[DeviceId, str]]
"""A wave encoded ahead: each message's CH and hex, in posting order."""


def phase_messages(
    wave: Wave, prepared: Prepared | None, devices: AbstractSet[DeviceId] | None
) -> Iterable[str]:
    """The hex of these CHs' messages (None: every CH's): picked from the encoded wave, or
    encoded now."""
    if prepared is not None:
        if devices is None:
            return [text for _, text in prepared]
        return [text for device, text in prepared if device in devices]
    return (m.data.hex() for m in wave.messages(only=devices))
