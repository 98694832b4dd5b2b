"""Server-side SVG charts: well-formed, accessible, scaled from the data, text escaped."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest
from lxml import etree

from chfw.shared.web import svg

SVG_NS = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> etree._Element:
    return etree.fromstring(markup.encode())


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


class TestNiceTicks:
    """Y-axis ticks start at 0, are 1/2/5 x 10^n apart and reach the maximum."""

    @pytest.mark.parametrize("maximum", [1, 7, 10, 99, 101, 550, 12_345, 0.3])
    def test_ticks_cover_the_maximum_with_round_steps(self, maximum: float) -> None:
        ticks = svg.nice_ticks(maximum)
        assert ticks[0] == 0
        assert ticks[-1] >= maximum
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
        assert round(mantissa, 6) in (1.0, 2.0, 5.0)
        assert all(b - a == pytest.approx(step) for a, b in itertools.pairwise(ticks))
        assert len(ticks) <= 12

    def test_nothing_to_show_still_has_an_axis(self) -> None:
        assert svg.nice_ticks(0) == [0.0, 1.0]


class TestTimeTicks:
    """Time ticks fall on round UTC times inside the range, labelled to a useful precision."""

    def test_ten_minutes_get_minute_ticks(self) -> None:
        start = datetime(2026, 3, 1, 9, 0, 20, tzinfo=UTC).timestamp()
        ticks = svg.time_ticks(start, start + 600)
        assert all(start <= t <= start + 600 for t, _ in ticks)
        assert all(t % 60 == 0 for t, _ in ticks)
        assert 3 <= len(ticks) <= 6
        assert all(re.fullmatch(r"09:\d\d", label) for _, label in ticks)

    def test_seconds_are_shown_for_a_short_span(self) -> None:
        start = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC).timestamp()
        labels = [label for _, label in svg.time_ticks(start, start + 20)]
        assert labels[0] == "09:00:00"
        assert len(labels) <= 7

    def test_days_for_a_long_span(self) -> None:
        start = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
        ticks = svg.time_ticks(start, start + 10 * 86400)
        assert all(t % 86400 == 0 for t, _ in ticks)
        assert [label for _, label in ticks][:2] == ["02 Mar", "04 Mar"]


class TestLineChart:
    """One path per series, placed by value; title and description for screen readers."""

    def chart(self, **options: object) -> etree._Element:
        series = [
            svg.Series("Success", [(0, 0), (10, 50), (20, 100)]),
            svg.Series("Failure <b>", [(0, 0), (10, 5), (20, 10)]),
        ]
        defaults: dict[str, object] = {
            "chart_id": "c",
            "title": "Outcomes & more",
            "description": "Two lines",
        }
        return parse(svg.line_chart(series, **{**defaults, **options}))  # type: ignore[arg-type]

    def test_is_an_accessible_image(self) -> None:
        root = self.chart()
        assert root.get("role") == "img"
        assert root.get("aria-labelledby") == "c-title c-desc"
        assert root.find(f"{SVG_NS}title").text == "Outcomes & more"
        assert root.find(f"{SVG_NS}desc").text == "Two lines"

    def test_one_path_per_series_and_names_escaped_in_the_legend(self) -> None:
        root = self.chart()
        paths = root.findall(f"{SVG_NS}path")
        assert len(paths) == 2
        legend = [t.text for t in root.iter(f"{SVG_NS}text")]
        assert "Failure <b>" in legend  # parsed back as text: it was escaped, not markup

    def test_higher_values_are_drawn_higher(self) -> None:
        root = self.chart()
        first = numbers(root.findall(f"{SVG_NS}path")[0].get("d"))
        ys = first[1::2]
        assert ys[0] > ys[1] > ys[2]  # SVG y grows downwards
        xs = first[0::2]
        assert xs[0] < xs[1] < xs[2]

    def test_a_step_chart_moves_horizontally_then_vertically(self) -> None:
        root = self.chart(step=True)
        d = root.findall(f"{SVG_NS}path")[0].get("d")
        assert "H" in d
        assert "V" in d
        assert "L" not in d

    def test_guides_are_labelled(self) -> None:
        root = self.chart(guides=[(50.0, "50 % (2 CHs)")])
        assert "50 % (2 CHs)" in [t.text for t in root.iter(f"{SVG_NS}text")]

    def test_a_fixed_maximum_scales_every_series(self) -> None:
        top = numbers(self.chart().findall(f"{SVG_NS}path")[0].get("d"))[5]
        lower = numbers(self.chart(y_max=400.0).findall(f"{SVG_NS}path")[0].get("d"))[5]
        assert lower > top  # 100 of 400 sits lower than 100 of ~100

    def test_no_data_is_still_a_valid_chart(self) -> None:
        root = parse(svg.line_chart([], chart_id="e", title="t", description="nothing yet"))
        assert root.findall(f"{SVG_NS}path") == []


class TestBarChart:
    """Bar lengths are proportional to the values; labels and texts are escaped."""

    def test_lengths_follow_the_values(self) -> None:
        bars = [svg.Bar("02010300", 300, "75 %"), svg.Bar("<none>", 100, "25 %")]
        root = parse(svg.bar_chart(bars, chart_id="b", title="t", description="d", maximum=400))
        widths = [float(r.get("width")) for r in root.findall(f"{SVG_NS}rect")[1:]]
        assert widths[0] == pytest.approx(3 * widths[1], rel=0.01)
        texts = [t.text for t in root.iter(f"{SVG_NS}text")]
        assert "<none>" in texts
        assert "75 %" in texts

    def test_empty(self) -> None:
        root = parse(svg.bar_chart([], chart_id="b", title="t", description="d"))
        assert "No data yet" in [t.text for t in root.iter(f"{SVG_NS}text")]
