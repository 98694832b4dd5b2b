"""`chfw demo` end to end, as a user runs it: real processes, real HTTP, checked summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


class TestDemo:
    """A small wave goes from CS06 answers to alerts recorded by every supplier."""

    def test_small_wave(self, tmp_path: Path) -> None:
        summary_path = tmp_path / "summary.json"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "chfw",
                "demo",
                "--hubs",
                "300",
                "--dir",
                str(tmp_path / "work"),
                "--summary-json",
                str(summary_path),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        summary = json.loads(summary_path.read_text())
        for key in ("outcomes", "alerts", "delivered", "retrying", "dead", "firmware_distribution"):
            assert key in summary
        assert set(summary["alerts"]) == {"N64", "N999"}
        assert summary["alerts"]["N64"] > 0
        assert summary["alerts"]["N999"] > 0  # two simulated suppliers are on DUIS 5.0
        assert summary["delivered"] == summary["alerts"]["N64"] + summary["alerts"]["N999"]
        assert summary["dead"] == 0
        assert sum(summary["firmware_distribution"].values()) == 300
        assert all(summary["checks"].values()), summary["checks"]
        campaign = summary["campaign"]
        assert campaign["state"] == "completed", campaign
        assert [(p["label"], p["size"]) for p in campaign["phases"]] == [
            ("pilot", 100),
            ("rest", 200),
        ]
        assert campaign["csp_rounds"] == [100, 200]  # the CSP took each phase from the work list
        assert sum(p["succeeded"] + p["failed"] for p in campaign["phases"]) == 300
        assert "Campaign demo-wave: completed" in run.stdout
        assert summary["pilot"]["cohort"] > 0
        assert 0 < summary["pilot"]["activated"] <= summary["pilot"]["cohort"]
        # Nothing left running: every child was stopped.
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
        assert str(tmp_path / "work") not in ps.stdout
