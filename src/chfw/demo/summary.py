"""The demo's summary: what the DSP and the suppliers recorded, checked against ground truth."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from chfw.core.domain import AlertKind, UserId
from chfw.dsp.store import estate, inventory, outbox
from chfw.dsp.store.schema import firmware_history
from chfw.shared.db.engine import create_engine_for, reading
from chfw.sim.wave import Wave
from chfw.supplier import backoffice

if TYPE_CHECKING:
    from chfw.demo.run import Supplier

KINDS = [kind.value for kind in AlertKind]


def build_summary(
    engine: sa.Engine, wave: Wave, suppliers: list[Supplier], intake: dict[str, Any]
) -> dict[str, Any]:
    truth = wave.ground_truth
    with reading(engine) as conn:
        outcomes = inventory.outcome_counts(conn)
        decisions: dict[str, int] = dict(
            conn.execute(
                sa.select(firmware_history.c.decision, sa.func.count()).group_by(
                    firmware_history.c.decision
                )
            ).all()
        )
        counts = outbox.counts(conn)
        by_recipient: dict[str, Counter[str]] = {}
        alerts: Counter[str] = Counter()
        for row in outbox.counts_by(conn):
            user = str(UserId.parse(row.user_id))
            by_recipient.setdefault(user, Counter())[row.alert_code] += row.count
            alerts[row.alert_code] += row.count
        distribution = {
            (version or "none"): n for version, n in estate.firmware_distribution(conn).items()
        }
    received: dict[str, dict[str, int]] = {}
    for supplier in suppliers:
        supplier_engine = create_engine_for(supplier.database_url)
        with reading(supplier_engine) as conn:
            received[supplier.user_id] = backoffice.alert_counts(conn)
        supplier_engine.dispose()
    expected_distribution = {
        (version or "none"): n for version, n in truth.firmware_distribution.items()
    }
    alerts_json = {kind: alerts.get(kind, 0) for kind in KINDS}
    recipients_json = {
        user: {kind: c.get(kind, 0) for kind in KINDS} for user, c in sorted(by_recipient.items())
    }
    expected_recipients = {
        user: c for user, c in truth.alerts_by_recipient.items() if any(c.values())
    }
    delivered_per_supplier = {
        supplier.user_id: {kind: received.get(supplier.user_id, {}).get(kind, 0) for kind in KINDS}
        for supplier in suppliers
    }
    checks = {
        "outcomes_match_ground_truth": all(
            outcomes.get(name, 0) == n for name, n in truth.outcomes.items()
        ),
        "alerts_match_ground_truth": alerts_json == truth.alerts
        and recipients_json == expected_recipients,
        "firmware_distribution_matches": distribution == expected_distribution,
        "every_alert_delivered": counts["delivered"] == sum(truth.alerts.values())
        and counts["dead"] == 0
        and counts["pending"] == 0,
        "suppliers_recorded_every_alert": all(
            delivered_per_supplier[user] == recipients_json.get(user, dict.fromkeys(KINDS, 0))
            for user in delivered_per_supplier
        )
        if suppliers
        else None,
    }
    return {
        "hubs": truth.hubs,
        "messages_posted": truth.messages,
        "outcomes": outcomes,
        "decisions": decisions,
        "alerts": alerts_json,
        "alerts_by_recipient": recipients_json,
        "delivered": counts["delivered"],
        "retrying": counts["retrying"],
        "pending": counts["pending"],
        "dead": counts["dead"],
        "firmware_distribution": distribution,
        "received_by_suppliers": delivered_per_supplier,
        "intake": intake,
        "ground_truth": truth.as_json(),
        "checks": checks,
    }


def print_summary(summary: dict[str, Any], console: Console) -> None:
    outcomes = Table(title="CS06 outcomes", show_edge=False)
    outcomes.add_column("result")
    outcomes.add_column("count", justify="right")
    for name, n in sorted(summary["outcomes"].items()):
        outcomes.add_row(name, f"{n:,}")
    console.print(outcomes)

    alerts = Table(title="Alerts by recipient", show_edge=False)
    alerts.add_column("Service User")
    for kind in KINDS:
        alerts.add_column(kind, justify="right")
    alerts.add_column("received", justify="right")
    for user, by_kind in summary["alerts_by_recipient"].items():
        received = sum(summary["received_by_suppliers"].get(user, {}).values())
        alerts.add_row(user, *(f"{by_kind[k]:,}" for k in KINDS), f"{received:,}")
    alerts.add_row(
        "[bold]total[/]", *(f"{summary['alerts'][k]:,}" for k in KINDS), "", end_section=True
    )
    console.print(alerts)
    console.print(
        f"delivery: [green]{summary['delivered']:,} delivered[/], "
        f"{summary['retrying']:,} retrying, [red]{summary['dead']:,} dead[/]"
    )

    firmware = Table(title="Firmware distribution (whole estate)", show_edge=False)
    firmware.add_column("active version")
    firmware.add_column("CHs", justify="right")
    for version, n in sorted(summary["firmware_distribution"].items()):
        firmware.add_row(version, f"{n:,}")
    console.print(firmware)
    campaign = summary.get("campaign")
    if campaign:
        phases = Table(
            title=f"Campaign {campaign['name']}: {campaign['state']} ({campaign['reason']})",
            show_edge=False,
        )
        columns = ("size", "dispatched", "succeeded", "failed", "unconfirmed", "held")
        phases.add_column("phase")
        phases.add_column("state")
        for column in columns:
            phases.add_column(column, justify="right")
        for p in campaign["phases"]:
            phases.add_row(p["label"], p["state"], *(f"{p[c]:,}" for c in columns))
        console.print(phases)
    pilot = summary.get("pilot")
    if pilot:
        reached = {m["percent"]: m["seconds_after_first"] for m in pilot["milestones"]}
        console.print(
            f"pilot {pilot['pilot']!r} (target {pilot['target_version']}): "
            f"{pilot['activated']:,} of {pilot['cohort']:,} CHs activated "
            f"({pilot['share']:.1%}), {pilot['not_yet']:,} not yet; "
            f"50% reached {reached.get(50)}s and 90% {reached.get(90)}s after the first"
        )
    timing = summary.get("timing", {})
    if timing:
        console.print(
            f"timing: posted in {timing['post_seconds']}s "
            f"({timing['messages_per_second']} messages/s), drained "
            f"{timing['drain_seconds_after_post']}s after, {timing['total_seconds']}s in all"
        )
    for name, ok in summary["checks"].items():
        if ok is None:
            continue
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        console.print(f"{mark} {name.replace('_', ' ')}")
