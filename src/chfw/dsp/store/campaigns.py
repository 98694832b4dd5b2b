"""Firmware campaigns in the DSP's database: create, start/pause/resume, status, listing.

The rules are :mod:`chfw.core.domain.campaign`'s; this module keeps their state.
Each phase row carries running counts (dispatched, succeeded, failed, held),
changed in the same transaction as the hubs' rows they count
(:mod:`chfw.dsp.store.campaign_work`), so gates read a few rows. What depends on
time (``unconfirmed``: dispatched longer ago than the campaign's
``unconfirmed_after``, no outcome) and on who asks (a supplier's own hubs) is
counted over the hubs when a status is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, FirmwareVersion, UserId
from chfw.core.domain.campaign import (
    CampaignState,
    Evaluation,
    Gates,
    PhaseCounts,
    PhaseSpec,
    assign_phases,
    check_name,
    evaluate,
    percent,
)
from chfw.dsp.store.schema import campaign_hubs, campaign_phases, campaigns, hubs, meter_points
from chfw.exceptions import StoreError, UnknownCampaignError
from chfw.shared.db.sql import among, chunked, from_db, to_db

DEFAULT_UNCONFIRMED_AFTER = 24 * 3600  # seconds after dispatch with no outcome


@dataclass(frozen=True, slots=True)
class PhaseRow:
    """A phase as stored: its plan and running counts (held hubs included in ``assigned``)."""

    label: str
    size_spec: str
    assigned: int
    dispatched: int
    succeeded: int
    failed: int
    held: int

    def counts(self, unconfirmed: int = 0) -> PhaseCounts:
        return PhaseCounts(
            self.label,
            self.assigned - self.held,
            self.dispatched,
            self.succeeded,
            self.failed,
            unconfirmed,
            self.held,
        )


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as stored."""

    campaign_id: int
    name: str
    target: FirmwareVersion
    state: CampaignState
    reason: str | None
    gates: Gates
    unconfirmed_after: int
    auto_pauses: int
    created_by: str
    created_at: datetime
    phases: tuple[PhaseRow, ...]

    def evaluation(self, *, check_errors: bool = False) -> Evaluation:
        """The gates applied (``check_errors``: only when outcomes just came in)."""
        return evaluate(
            self.state,
            self.reason,
            [p.counts() for p in self.phases],
            self.gates,
            check_errors=check_errors,
        )


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """A campaign's status (over every hub, or over one Service User's)."""

    campaign: Campaign
    evaluation: Evaluation
    phases: tuple[PhaseCounts, ...]

    def as_json(self) -> dict[str, Any]:
        """The shape ``chfw campaign status --json`` and ``GET /su/v1/campaigns/NAME`` answer."""
        c = self.campaign
        return {
            "name": c.name,
            "target_version": c.target.hex,
            "state": self.evaluation.state.value,
            "reason": self.evaluation.reason,
            "gates": {
                "error_threshold": c.gates.error_threshold,
                "min_sample": c.gates.min_sample,
                "success_threshold": c.gates.success_threshold,
                "unconfirmed_after_seconds": c.unconfirmed_after,
            },
            "phases": [
                {
                    "label": p.label,
                    "size": p.size,
                    "state": state.value,
                    "dispatched": p.dispatched,
                    "succeeded": p.succeeded,
                    "failed": p.failed,
                    "unconfirmed": p.unconfirmed,
                    "held": p.held,
                }
                for p, state in zip(self.phases, self.evaluation.phases, strict=True)
            ],
        }


def _missing(name: str) -> UnknownCampaignError:
    return UnknownCampaignError(f"no campaign {name!r} (see `chfw campaign list`)")


def cohort_from_estate(
    conn: Connection, regions: Sequence[str] = (), current: FirmwareVersion | None = None
) -> list[DeviceId]:
    """The CHs of the estate in ``regions`` (all if none) at ``current`` firmware (any if None)."""
    query = sa.select(hubs.c.device_id)
    if regions:
        query = query.where(hubs.c.csp_region.in_(list(regions)))
    if current is not None:
        query = query.where(hubs.c.active_firmware == current.hex)
    return [DeviceId.parse(d) for d in conn.execute(query).scalars()]


def _unknown_hubs(conn: Connection, cohort: Sequence[DeviceId]) -> list[DeviceId]:
    known: set[str] = set()
    for chunk in chunked([d.hex for d in cohort], 5000):
        known.update(
            conn.execute(
                sa.select(hubs.c.device_id).where(among(conn, hubs.c.device_id, chunk))
            ).scalars()
        )
    return [d for d in cohort if d.hex not in known]


def create(
    conn: Connection,
    name: str,
    target: FirmwareVersion,
    cohort: Iterable[DeviceId],
    phases: Sequence[PhaseSpec],
    gates: Gates,
    *,
    actor: str,
    now: datetime,
    unconfirmed_after: int = DEFAULT_UNCONFIRMED_AFTER,
) -> Campaign:
    """A draft campaign, its hubs assigned to phases (:func:`assign_phases`)."""
    check_name(name)
    if unconfirmed_after < 1:
        raise StoreError(f"unconfirmed-after must be at least 1 second, got {unconfirmed_after}")
    members = sorted(set(cohort), key=lambda d: d.hex)
    unknown = _unknown_hubs(conn, members)
    if unknown:
        shown = ", ".join(str(d) for d in unknown[:3])
        raise StoreError(
            f"{len(unknown)} hub(s) of the cohort are not in the estate (e.g. {shown}); "
            "import them first (`chfw estate import`) or leave them out"
        )
    assigned = assign_phases(name, members, phases)
    if conn.execute(sa.select(campaigns.c.name).where(campaigns.c.name == name)).first():
        raise StoreError(f"campaign {name!r} already exists")
    at = to_db(now)
    campaign_id = conn.execute(
        sa.insert(campaigns)
        .values(
            name=name,
            target_version=target.hex,
            state=CampaignState.DRAFT.value,
            reason=None,
            error_threshold=gates.error_threshold,
            min_sample=gates.min_sample,
            success_threshold=gates.success_threshold,
            unconfirmed_after=unconfirmed_after,
            auto_pauses=0,
            created_by=actor[:200],
            created_at=at,
            updated_at=at,
        )
        .returning(campaigns.c.campaign_id)
    ).scalar_one()
    conn.execute(
        sa.insert(campaign_phases),
        [
            {
                "campaign_id": campaign_id,
                "phase": i,
                "label": spec.label,
                "size_spec": str(spec.size),
                "assigned": len(members_),
            }
            for i, (spec, members_) in enumerate(zip(phases, assigned, strict=True))
        ],
    )
    rows = [
        {"campaign_id": campaign_id, "device_id": d.hex, "phase": i, "position": n}
        for n, (i, d) in enumerate((i, d) for i, ms in enumerate(assigned) for d in ms)
    ]
    for chunk in chunked(rows, 5000):
        conn.execute(sa.insert(campaign_hubs), chunk)
    return get(conn, name)


def _phases_of(conn: Connection, campaign_id: int) -> tuple[PhaseRow, ...]:
    p = campaign_phases.c
    rows = conn.execute(
        sa.select(p.label, p.size_spec, p.assigned, p.dispatched, p.succeeded, p.failed, p.held)
        .where(p.campaign_id == campaign_id)
        .order_by(p.phase)
    )
    return tuple(PhaseRow(*row) for row in rows)


def _campaign(conn: Connection, row: Any) -> Campaign:
    return Campaign(
        campaign_id=int(row.campaign_id),
        name=row.name,
        target=FirmwareVersion.parse(row.target_version),
        state=CampaignState(row.state),
        reason=row.reason,
        gates=Gates(row.error_threshold, row.min_sample, row.success_threshold),
        unconfirmed_after=int(row.unconfirmed_after),
        auto_pauses=int(row.auto_pauses),
        created_by=row.created_by,
        created_at=from_db(row.created_at),
        phases=_phases_of(conn, int(row.campaign_id)),
    )


def find(conn: Connection, name: str, *, for_update: bool = False) -> Campaign | None:
    query = sa.select(campaigns).where(campaigns.c.name == name)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _campaign(conn, row)


def get(conn: Connection, name: str, *, for_update: bool = False) -> Campaign:
    found = find(conn, name, for_update=for_update)
    if found is None:
        raise _missing(name)
    return found


def list_campaigns(conn: Connection, user: UserId | None = None) -> list[Campaign]:
    """Every campaign, newest first; with ``user``, those touching one of the user's hubs."""
    query = sa.select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.name)
    if user is not None:
        touching = (
            sa.select(campaign_hubs.c.campaign_id)
            .where(campaign_hubs.c.device_id.in_(user_hubs(user)))
            .distinct()
        )
        query = query.where(campaigns.c.campaign_id.in_(touching))
    return [_campaign(conn, row) for row in conn.execute(query).all()]


def user_hubs(user: UserId) -> sa.Select[tuple[str]]:
    """The CHs the user is Import, Export or Gas Supplier on (the inventory API's rule,
    :func:`chfw.dsp.store.inventory_access.is_responsible_supplier`)."""
    u = user.hex
    m = meter_points.c
    return sa.select(m.device_id).where(
        sa.or_(m.import_supplier == u, m.export_supplier == u, m.gas_supplier == u)
    )


def save_evaluation(
    conn: Connection, campaign: Campaign, now: datetime, *, check_errors: bool = False
) -> Evaluation:
    """Evaluate the gates and store a state they changed (paused by the error threshold,
    with ``check_errors``: counted in ``auto_pauses``; completed)."""
    evaluation = campaign.evaluation(check_errors=check_errors)
    if evaluation.state is not campaign.state:
        auto = evaluation.state is CampaignState.PAUSED
        conn.execute(
            sa.update(campaigns)
            .where(campaigns.c.campaign_id == campaign.campaign_id)
            .values(
                state=evaluation.state.value,
                reason=evaluation.reason,
                updated_at=to_db(now),
                auto_pauses=campaigns.c.auto_pauses + (1 if auto else 0),
            )
        )
    return evaluation


_MOVES = {
    "start": ({CampaignState.DRAFT}, CampaignState.RUNNING),
    "pause": ({CampaignState.RUNNING}, CampaignState.PAUSED),
    "resume": ({CampaignState.PAUSED}, CampaignState.RUNNING),
}


def change_state(
    conn: Connection,
    name: str,
    action: str,
    *,
    actor: str,
    now: datetime,
    error_threshold: float | None = None,
) -> Campaign:
    """``start`` a draft, ``pause`` a running campaign, ``resume`` a paused one (only a
    person resumes; ``error_threshold`` may be raised then so the gate lets it go on)."""
    campaign = get(conn, name, for_update=True)
    allowed, target = _MOVES[action]
    if campaign.state not in allowed:
        raise StoreError(
            f"campaign {name!r} is {campaign.state.value}: cannot {action} it "
            f"(only a {' or '.join(sorted(s.value for s in allowed))} campaign)"
        )
    values: dict[str, Any] = {"state": target.value, "updated_at": to_db(now)}
    values["reason"] = f"paused by {actor}" if action == "pause" else None
    if error_threshold is not None:
        gates = replace(campaign.gates, error_threshold=error_threshold)  # validates
        values["error_threshold"] = gates.error_threshold
    conn.execute(
        sa.update(campaigns).where(campaigns.c.campaign_id == campaign.campaign_id).values(values)
    )
    campaign = get(conn, name)
    if target is CampaignState.RUNNING:
        save_evaluation(conn, campaign, now)  # e.g. every phase already passed: completed
        campaign = get(conn, name)
    return campaign


def _per_phase(conn: Connection, query: sa.Select[Any]) -> dict[int, int]:
    return {int(phase): int(n) for phase, n in conn.execute(query).all()}


def _unconfirmed(
    conn: Connection, campaign: Campaign, now: datetime, user: UserId | None
) -> dict[int, int]:
    h = campaign_hubs.c
    cutoff = to_db(now - timedelta(seconds=campaign.unconfirmed_after))
    query = (
        sa.select(h.phase, sa.func.count())
        .where(
            h.campaign_id == campaign.campaign_id,
            h.dispatched_at <= cutoff,
            h.outcome.is_(None),
        )
        .group_by(h.phase)
    )
    if user is not None:
        query = query.where(h.device_id.in_(user_hubs(user)))
    return _per_phase(conn, query)


def _user_counts(conn: Connection, campaign: Campaign, user: UserId) -> list[PhaseRow]:
    """The phases counted over the user's hubs only."""
    h = campaign_hubs.c
    held = h.held_at.is_not(None)
    query = (
        sa.select(
            h.phase,
            sa.func.count(),
            sa.func.count(h.dispatched_at),
            sa.func.sum(sa.case((h.outcome == "succeeded", 1), else_=0)),
            sa.func.sum(sa.case((h.outcome == "failed", 1), else_=0)),
            sa.func.sum(sa.case((held, 1), else_=0)),
        )
        .where(h.campaign_id == campaign.campaign_id, h.device_id.in_(user_hubs(user)))
        .group_by(h.phase)
    )
    found = {int(r[0]): r for r in conn.execute(query).all()}
    out = []
    for i, phase in enumerate(campaign.phases):
        r = found.get(i)
        figures = (0, 0, 0, 0, 0) if r is None else tuple(int(x or 0) for x in r[1:])
        out.append(PhaseRow(phase.label, phase.size_spec, *figures))
    return out


def status(
    conn: Connection, name: str, now: datetime, user: UserId | None = None
) -> CampaignStatus:
    """The campaign's status; with ``user``, counted over that Service User's hubs only
    (the state, reason and phase states stay the campaign's)."""
    campaign = get(conn, name)
    evaluation = campaign.evaluation()
    unconfirmed = _unconfirmed(conn, campaign, now, user)
    rows = campaign.phases if user is None else tuple(_user_counts(conn, campaign, user))
    phases = tuple(p.counts(unconfirmed.get(i, 0)) for i, p in enumerate(rows))
    return CampaignStatus(campaign, evaluation, phases)


def touches_user(conn: Connection, campaign: Campaign, user: UserId) -> bool:
    h = campaign_hubs.c
    query = (
        sa.select(h.device_id)
        .where(h.campaign_id == campaign.campaign_id, h.device_id.in_(user_hubs(user)))
        .limit(1)
    )
    return conn.execute(query).first() is not None


@dataclass(frozen=True, slots=True)
class HubMembership:
    """A CH in a campaign (for its page in the dashboard)."""

    campaign: str
    state: str
    phase: str
    dispatched_at: datetime | None
    dispatched_to: str | None
    outcome: str | None
    held_by: str | None
    held_reason: str | None


def campaigns_of_hub(conn: Connection, device: DeviceId) -> list[HubMembership]:
    h, c, p = campaign_hubs.c, campaigns.c, campaign_phases.c
    query = (
        sa.select(
            c.name,
            c.state,
            p.label,
            h.dispatched_at,
            h.dispatched_to,
            h.outcome,
            h.held_by,
            h.held_reason,
        )
        .select_from(
            campaign_hubs.join(campaigns, c.campaign_id == h.campaign_id).join(
                campaign_phases, (p.campaign_id == h.campaign_id) & (p.phase == h.phase)
            )
        )
        .where(h.device_id == device.hex)
        .order_by(c.created_at.desc())
    )
    return [
        HubMembership(
            r.name,
            r.state,
            r.label,
            from_db(r.dispatched_at) if r.dispatched_at else None,
            r.dispatched_to,
            r.outcome,
            r.held_by,
            r.held_reason,
        )
        for r in conn.execute(query).all()
    ]


def describe_gates(gates: Gates) -> str:
    """The gates as one line, e.g. for the dashboard and the CLI."""
    return (
        f"pause over {percent(gates.error_threshold)} % failed (after {gates.min_sample} "
        f"outcomes); {percent(gates.success_threshold)} % succeeded opens the next phase"
    )


def metric_rows(conn: Connection) -> list[tuple[str, str, int]]:
    """Each campaign's name, state and how often its error threshold paused it (/metrics)."""
    c = campaigns.c
    rows = conn.execute(sa.select(c.name, c.state, c.auto_pauses).order_by(c.name))
    return [(name, state, int(pauses)) for name, state, pauses in rows]


def paused(conn: Connection) -> list[tuple[str, str]]:
    """The paused campaigns' names and reasons, oldest change first (the overview's alert)."""
    c = campaigns.c
    query = (
        sa.select(c.name, c.reason)
        .where(c.state == CampaignState.PAUSED.value)
        .order_by(c.updated_at, c.name)
    )
    return [(name, reason or "paused") for name, reason in conn.execute(query)]
