"""The shipped alerting rules (deploy/prometheus/) with Debian's real Prometheus (issue 23, 8).

- `promtool check rules` and `promtool test rules` (every alert, firing and not, in
  chfw-alerts.test.yml);
- a real Prometheus scraping a real `chfw serve` whose Service User's endpoint is down (a
  real `chfw worker` failed to reach it): ChfwSupplierEndpointDown fires for that user.

Prometheus comes from Debian's `prometheus` package (scripts/ensure-prometheus.sh, run by
`make test`); these tests skip only when it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.dsp.store import outbox
from tests.cli.test_health import get, intake, start, until
from tests.cli.test_serve import BOUND
from tests.dsp.delivery.helpers import HUB_2, SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import free_port
from tests.small_dsp import build_dsp

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "chfw-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "chfw-alerts.test.yml"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="Debian's prometheus package is not installed (scripts/ensure-prometheus.sh "
    "installs it as root)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=BOUND, check=False
    )


class TestPromtool:
    def test_rules_are_valid(self) -> None:
        checked = promtool("check", "rules", str(RULES))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS: 8 rules found" in checked.stdout

    def test_rule_unit_tests(self) -> None:
        tested = promtool("test", "rules", str(RULE_TESTS))
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "SUCCESS" in tested.stdout


def prometheus_config(folder: Path, target_port: int) -> Path:
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: chfw-intake\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    return config


def firing(port: int) -> list[dict[str, str]]:
    """The labels of every alert Prometheus has firing."""
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=BOUND)
    if answer.status_code != 200:  # still starting
        return []
    alerts = answer.json()["data"]["alerts"]
    return [dict(a["labels"]) for a in alerts if a["state"] == "firing"]


class TestRealPrometheus:
    def test_supplier_endpoint_down_fires(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        build_dsp(engine)
        add_user(engine, SUPPLIER_A, f"http://127.0.0.1:{free_port()}/duis")  # nothing there
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], an_hour_ago)
        worker = start(database_url, tmp_path, "worker", "--once")
        _, err = worker.communicate(timeout=BOUND)
        assert worker.returncode == 0, err
        with engine.connect() as conn:
            assert outbox.counts(conn)["retrying"] == 2  # the endpoint refused connections

        server, port = intake(database_url, tmp_path)
        prom_port = free_port()
        assert PROMETHEUS is not None
        prometheus = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={prometheus_config(tmp_path, port)}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wanted = "ChfwSupplierEndpointDown"
            until(
                lambda: any(a["alertname"] == wanted for a in firing(prom_port)),
                prometheus,
                f"{wanted} firing",
            )
            alerts = firing(prom_port)
            down = [a for a in alerts if a["alertname"] == wanted]
            assert [a["user_id"] for a in down] == [SUPPLIER_A.hex]
            names = {a["alertname"] for a in alerts}
            assert "ChfwOldestUndeliveredAlert" in names
            assert "ChfwDeliverySuspended" not in names
            assert get(port, "/readyz").status_code == 200
        finally:
            prometheus.terminate()
            prometheus.communicate(timeout=BOUND)
            server.kill()
            server.communicate()
