"""The kit's report: for machines (JSON), for people (a rich table), for test evidence (HTML).

JSON: ``{"cases": [{"id", "description", "expected", "got", "passed", ...}],
"passed": n, "failed": n, ...}``. The HTML page is one self-contained file
(styles inline, nothing fetched) rendered by the shared Jinja2 environment
with autoescaping: what an endpoint answered is shown, never interpreted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from chfw import __version__
from chfw.shared.web.render import ENV, add_templates

add_templates("chfw.uit")
TEMPLATE = "uit_report.html"  # standalone: styles inline, no base.html (it links served assets)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's outcome; ``not_checked`` names what the answer alone could not show."""

    id: str
    group: str
    description: str
    expected: str
    sent: str
    got: str
    passed: bool
    not_checked: str | None = None
    response_id: str = ""  # of the alert the case is built on: where to find its record

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "description": self.description,
            "expected": self.expected,
            "sent": self.sent,
            "response_id": self.response_id,
            "got": self.got,
            "passed": self.passed,
            "not_checked": self.not_checked,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """A whole run: where it went, when, and every case's result in the order run."""

    target: str
    duis_version: str
    observed_by: str | None  # how records were checked, None: answers only
    started_at: datetime
    finished_at: datetime
    results: tuple[CaseResult, ...]
    signed_as: str = ""  # issuer and serial number of the certificate the alerts name

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def not_checked(self) -> int:
        return sum(result.not_checked is not None for result in self.results)

    @property
    def all_passed(self) -> bool:
        return self.failed == 0 and bool(self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "duis_version": self.duis_version,
            "observed_by": self.observed_by,
            "signed_as": self.signed_as,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "chfw_version": __version__,
            "cases": [result.to_json() for result in self.results],
            "passed": self.passed,
            "failed": self.failed,
            "not_checked": self.not_checked,
        }


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    return ENV.get_template(TEMPLATE).render(report=report, chfw_version=__version__)


def write_html(report: Report, path: Path) -> None:
    path.write_text(html(report), encoding="utf-8")


def table(report: Report) -> Table:
    """The cases as a terminal table, in the order run."""
    grid = Table(title=f"chfw uit: {report.target} (DUIS {report.duis_version})")
    for heading in ("case", "expected", "got", "result"):
        grid.add_column(heading, overflow="fold")
    for result in report.results:
        verdict = "[green]pass[/]" if result.passed else "[bold red]FAIL[/]"
        if result.not_checked is not None:
            verdict += f"\n[yellow]not checked:[/] {escape(result.not_checked)}"
        # What the endpoint answered is its text, not markup for the terminal.
        grid.add_row(
            f"{result.id}\n{result.description}", result.expected, escape(result.got), verdict
        )
    return grid


def summary(report: Report) -> str:
    """One line: counts and the verdict."""
    unchecked = f", {report.not_checked} with parts not checked" if report.not_checked else ""
    verdict = "every case passed" if report.all_passed else "the endpoint FAILED"
    return f"{report.passed} passed, {report.failed} failed{unchecked}: {verdict}"
