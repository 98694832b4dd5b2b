"""What moves a campaign: the CSP's work list, the outcomes the intake takes, suppliers' holds.

Each runs inside its caller's transaction and keeps the phases' running counts
(:mod:`chfw.dsp.store.campaigns`) with the hubs' rows they count. On PostgreSQL
the campaign row is locked first (``FOR UPDATE``) where a work list is handed
out or hubs are held, so two CSP requests never hand out one hub twice; SQLite
has one writer at a time (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import ActivationResult, DeviceId, FirmwareVersion, UserId
from chfw.core.domain.campaign import CampaignState, HubOutcome, hub_outcome
from chfw.dsp.store.campaigns import get, save_evaluation, user_hubs
from chfw.dsp.store.schema import campaign_hubs, campaign_phases, campaigns, hubs, meter_points
from chfw.exceptions import HubNotSuppliedError, StoreError
from chfw.shared.db.sql import among, to_db

WORK_LIMIT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Work:
    """A work list: the campaign's state and the hubs to send CS06 to now."""

    state: CampaignState
    device_ids: tuple[DeviceId, ...]


def _add_to_phases(
    conn: Connection, campaign_id: int, column: str, per_phase: Counter[int]
) -> None:
    if not per_phase:
        return
    p = campaign_phases.c
    conn.execute(
        sa.update(campaign_phases)
        .where(p.campaign_id == sa.bindparam("c"), p.phase == sa.bindparam("ph"))
        .values({column: p[column] + sa.bindparam("n")}),
        [{"c": campaign_id, "ph": ph, "n": n} for ph, n in sorted(per_phase.items())],
    )


def take_work(
    conn: Connection,
    name: str,
    csp: str,
    regions: Sequence[str] | None,
    limit: int,
    now: datetime,
) -> Work:
    """Hand ``csp`` up to ``limit`` hubs of its ``regions`` (None: all) from the open phase
    (and passed ones), not held, not yet dispatched; they become dispatched to it.
    A campaign that is not running hands out nothing."""
    if not 1 <= limit <= WORK_LIMIT_MAX:
        raise StoreError(f"limit must be 1-{WORK_LIMIT_MAX}, got {limit}")
    campaign = get(conn, name, for_update=True)
    evaluation = save_evaluation(conn, campaign, now)
    if evaluation.state is not CampaignState.RUNNING or evaluation.open_index is None:
        return Work(evaluation.state, ())
    h = campaign_hubs.c
    query = (
        sa.select(h.device_id, h.phase)
        .where(
            h.campaign_id == campaign.campaign_id,
            h.dispatched_at.is_(None),
            h.held_at.is_(None),
            h.phase <= evaluation.open_index,
        )
        .order_by(h.phase, h.position)
        .limit(limit)
    )
    if regions is not None:
        query = query.join(hubs, hubs.c.device_id == h.device_id).where(
            hubs.c.csp_region.in_(list(regions))
        )
    rows = conn.execute(query).all()
    if not rows:
        return Work(evaluation.state, ())
    conn.execute(
        sa.update(campaign_hubs)
        .where(
            h.campaign_id == campaign.campaign_id, among(conn, h.device_id, [r[0] for r in rows])
        )
        .values(dispatched_at=to_db(now), dispatched_to=csp)
    )
    _add_to_phases(conn, campaign.campaign_id, "dispatched", Counter(int(r[1]) for r in rows))
    # Stored hex, known good: no need to parse each of up to 10,000 IDs as text again.
    return Work(evaluation.state, tuple(DeviceId(bytes.fromhex(r[0])) for r in rows))


@dataclass(frozen=True, slots=True)
class AutoPause:
    """A campaign the outcomes just paused, and why."""

    campaign: str
    reason: str


Outcome = tuple[DeviceId, ActivationResult, FirmwareVersion | None]


def count_outcomes(conn: Connection, outcomes: Sequence[Outcome], now: datetime) -> list[AutoPause]:
    """Count processed CS06 outcomes for their hubs' phases: the first success at the target
    or failure after dispatch settles the hub. Running campaigns are then evaluated; those
    over an error threshold are paused (returned) and those done completed."""
    final = {d.hex for d, result, _ in outcomes if result is not ActivationResult.ACCEPTED}
    if not final or not _any_started(conn):  # no campaign has dispatched anything
        return []
    h, c = campaign_hubs.c, campaigns.c
    rows = conn.execute(
        sa.select(h.campaign_id, h.device_id, h.phase, c.target_version)
        .select_from(campaign_hubs.join(campaigns, c.campaign_id == h.campaign_id))
        .where(
            among(conn, h.device_id, final),
            h.dispatched_at.is_not(None),
            h.outcome.is_(None),
        )
    ).all()
    if not rows:
        return []
    open_by_device: dict[str, list[Any]] = {}
    for row in rows:
        open_by_device.setdefault(row.device_id, []).append(row)
    settled: dict[tuple[int, str], tuple[int, HubOutcome]] = {}
    targets: dict[str, FirmwareVersion] = {}
    for device, result, version in outcomes:
        for row in open_by_device.get(device.hex, ()):
            key = (int(row.campaign_id), row.device_id)
            if key in settled:
                continue
            target = targets.get(row.target_version)
            if target is None:
                target = targets[row.target_version] = FirmwareVersion.parse(row.target_version)
            outcome = hub_outcome(result, version, target)
            if outcome is not None:
                settled[key] = (int(row.phase), outcome)
    return _settle(conn, settled, now) if settled else []


def _any_started(conn: Connection) -> bool:
    """Whether any campaign has left draft (only those have dispatched hubs)."""
    query = sa.select(campaigns.c.campaign_id).where(campaigns.c.state != CampaignState.DRAFT.value)
    return conn.execute(query.limit(1)).first() is not None


def _settle(
    conn: Connection, settled: dict[tuple[int, str], tuple[int, HubOutcome]], now: datetime
) -> list[AutoPause]:
    """Record the settled hubs, campaign by campaign in id order, each campaign's row
    locked first (PostgreSQL) as the work list and holds lock it: one order of locks."""
    h = campaign_hubs.c
    by_campaign: dict[int, dict[HubOutcome, tuple[list[str], Counter[int]]]] = {}
    for (campaign_id, device), (phase, outcome) in sorted(settled.items()):
        per = by_campaign.setdefault(campaign_id, {})
        if outcome not in per:
            per[outcome] = ([], Counter())
        hexes, phases = per[outcome]
        hexes.append(device)
        phases[phase] += 1
    paused = []
    for campaign_id, per in sorted(by_campaign.items()):
        lock = sa.select(campaigns.c.name).where(campaigns.c.campaign_id == campaign_id)
        if conn.dialect.name == "postgresql":
            lock = lock.with_for_update()
        name = conn.execute(lock).scalar_one()
        for outcome, (hexes, phases) in per.items():
            # One statement per campaign and outcome, not one per hub.
            conn.execute(
                sa.update(campaign_hubs)
                .where(h.campaign_id == campaign_id, among(conn, h.device_id, hexes))
                .values(outcome=outcome.value, outcome_at=to_db(now))
            )
            _add_to_phases(conn, campaign_id, outcome.value, phases)
        campaign = get(conn, name)
        if campaign.state is not CampaignState.RUNNING:
            continue
        evaluation = save_evaluation(conn, campaign, now, check_errors=True)
        if evaluation.state is CampaignState.PAUSED:
            paused.append(AutoPause(name, evaluation.reason))
    return paused


@dataclass(frozen=True, slots=True)
class Holds:
    """What a hold request did: hubs held now, and the others with the reason."""

    held: tuple[DeviceId, ...]
    not_held: tuple[tuple[DeviceId, str], ...]


def hold(
    conn: Connection,
    name: str,
    user: UserId,
    devices: Sequence[DeviceId],
    reason: str,
    now: datetime,
) -> Holds:
    """Hold the user's hubs not yet dispatched: out of every phase from now on, recorded
    with the user and ``reason``. Any hub the user is not a supplier of refuses the whole
    request (:class:`HubNotSuppliedError`), nothing held."""
    campaign = get(conn, name, for_update=True)
    wanted = sorted(set(devices), key=lambda d: d.hex)
    hexes = [d.hex for d in wanted]
    mine = {
        str(d)
        for d in conn.execute(
            user_hubs(user).where(among(conn, meter_points.c.device_id, hexes))
        ).scalars()
    }
    if any(d.hex not in mine for d in wanted):
        raise HubNotSuppliedError("a hub in the request is not one this Service User supplies")
    h = campaign_hubs.c
    rows = {
        r.device_id: r
        for r in conn.execute(
            sa.select(h.device_id, h.phase, h.dispatched_at, h.held_at).where(
                h.campaign_id == campaign.campaign_id,
                among(conn, h.device_id, [d.hex for d in wanted]),
            )
        ).all()
    }
    held: list[DeviceId] = []
    not_held: list[tuple[DeviceId, str]] = []
    per_phase: Counter[int] = Counter()
    for device in wanted:
        row = rows.get(device.hex)
        if row is None:
            not_held.append((device, "not in this campaign"))
        elif row.held_at is not None:
            not_held.append((device, "already held"))
        elif row.dispatched_at is not None:
            not_held.append((device, "already dispatched"))
        else:
            held.append(device)
            per_phase[int(row.phase)] += 1
    if held:
        conn.execute(
            sa.update(campaign_hubs)
            .where(
                h.campaign_id == campaign.campaign_id,
                among(conn, h.device_id, [d.hex for d in held]),
            )
            .values(held_at=to_db(now), held_by=str(user), held_reason=reason[:500])
        )
        _add_to_phases(conn, campaign.campaign_id, "held", per_phase)
        if campaign.state is CampaignState.RUNNING:
            save_evaluation(conn, get(conn, name), now)
    return Holds(tuple(held), tuple(not_held))
