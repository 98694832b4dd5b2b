"""Dashboard and metrics aggregates: outcomes over time, delivery health, latency quantiles."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store import outbox, stats
from chfw.dsp.store.schema import firmware_history
from chfw.dsp.store.schema import outbox as outbox_table
from tests.web.wave import load_wave, settle

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class TestChooseStep:
    """Bucket widths are round numbers that keep the chart within its point budget."""

    @pytest.mark.parametrize(
        ("span", "expected"),
        [
            (1, 1),
            (100, 1),
            (121, 2),
            (600, 5),
            (3600, 30),
            (86_400, 900),
            (30 * 86_400, 21_600),
            (300 * 86_400, 3 * 86_400),
        ],
    )
    def test_round_widths(self, span: float, expected: int) -> None:
        assert stats.choose_step(span, 120) == expected

    def test_never_more_points_than_asked(self) -> None:
        for span in (7, 999, 12_345, 400_000, 9_000_000):
            assert span / stats.choose_step(span, 50) <= 50


class TestQuantile:
    """Nearest-rank quantiles: always a value that was observed."""

    def test_median_and_p99(self) -> None:
        values = [float(v) for v in range(1, 101)]
        assert stats.quantile(values, 0.5) == 50.0
        assert stats.quantile(values, 0.99) == 99.0
        assert stats.quantile(values, 1.0) == 100.0

    def test_none_without_values(self) -> None:
        assert stats.quantile([], 0.5) is None

    def test_out_of_range(self) -> None:
        with pytest.raises(ValueError, match="between 0 and 1"):
            stats.quantile([1.0], 1.5)


class TestCumulativeOutcomes:
    """Counts accumulate bucket by bucket; pending rises with "accepted" and falls with alerts."""

    def test_series(self) -> None:
        rows = [
            (0, "success", "response", 3),
            (0, "accepted", "response", 2),
            (2, "hash_mismatch", "response", 1),
            (3, "success", "alert", 1),
            (3, "activation_failure", "alert", 1),
        ]
        timeline = stats.cumulative_outcomes(T0, 10, rows)
        assert timeline.times[0] == T0
        assert timeline.times[-1] == T0 + timedelta(seconds=40)
        assert timeline.series["success"] == (0, 3, 3, 3, 4)
        assert timeline.series["hash_mismatch"] == (0, 0, 0, 1, 1)
        assert timeline.series["pending"] == (0, 2, 2, 2, 0)
        assert timeline.totals["activation_failure"] == 1

    def test_pending_never_negative(self) -> None:
        timeline = stats.cumulative_outcomes(T0, 1, [(0, "success", "alert", 2)])
        assert timeline.series["pending"] == (0, 0)

    def test_empty(self) -> None:
        timeline = stats.cumulative_outcomes(T0, 1, [])
        assert timeline.totals == dict.fromkeys(stats.OUTCOME_CATEGORIES, 0)


class TestFromTheDatabase:
    """On a processed wave the aggregates agree with plain counts of the same rows."""

    def test_timeline_totals_match_the_history(self, engine: Engine) -> None:
        load_wave(engine, 120, spread_seconds=300)
        with engine.connect() as conn:
            timeline = stats.outcome_timeline(conn, max_points=40)
            results = Counter(
                dict(
                    conn.execute(
                        sa.select(firmware_history.c.result, sa.func.count()).group_by(
                            firmware_history.c.result
                        )
                    ).all()
                )
            )
            from_alerts = conn.execute(
                sa.select(sa.func.count()).where(firmware_history.c.source == "alert")
            ).scalar_one()
        assert len(timeline.times) - 1 <= 40
        for name in ("success", "no_image_held", "hash_mismatch", "activation_failure"):
            assert timeline.totals[name] == results[name]
        assert timeline.totals["pending"] == max(0, results["accepted"] - from_alerts)
        success = timeline.series["success"]
        assert list(success) == sorted(success)  # cumulative: never goes down
        assert timeline.series["success"][len(timeline.series["success"]) // 2] > 0

    def test_empty_history(self, engine: Engine) -> None:
        with engine.connect() as conn:
            assert stats.outcome_timeline(conn).times == ()

    def test_delivery_health_counts_and_latency(self, engine: Engine) -> None:
        loaded = load_wave(engine, 120)
        made = settle(engine, dead=2, retrying=3)
        with engine.connect() as conn:
            health = stats.delivery_health(conn, datetime.now(UTC))
            per_user = Counter(
                dict(
                    conn.execute(
                        sa.select(outbox_table.c.user_id, sa.func.count()).group_by(
                            outbox_table.c.user_id
                        )
                    ).all()
                )
            )
        assert {h.user_id for h in health} == set(per_user)
        assert sum(h.dead for h in health) == made["dead"]
        assert sum(h.retrying for h in health) == made["retrying"]
        assert sum(h.delivered for h in health) == made["delivered"]
        for h in health:
            assert h.pending + h.dead + h.delivered == per_user[h.user_id]
            assert h.delivered_recently == h.delivered  # all within the last hour
            assert h.p50_seconds is not None
            assert h.p99_seconds is not None
            assert 0.2 <= h.p50_seconds <= h.p99_seconds <= 6.0  # settle() waits 0.2-6 s
        names = {s.user_id.hex: s.name for s in loaded.synthetic.suppliers}
        assert all(h.name == names[h.user_id] for h in health)

    def test_attempts_by_outcome(self, engine: Engine) -> None:
        load_wave(engine, 60)
        settle(engine, dead=1, retrying=2)
        with engine.connect() as conn:
            attempts = stats.attempts_by_outcome(conn)
            total = outbox.counts(conn)
        assert attempts["rejected"] == 1
        assert attempts["retry"] == 2
        assert attempts["delivered"] == total["delivered"]
