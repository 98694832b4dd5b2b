"""`chfw campaign` and `chfw csp add --region`, against a test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.campaign import app
from chfw.cli.csp import app as csp_app
from chfw.dsp.store import csps
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.campaign_helpers import device, seed_estate


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    with engine.begin() as conn:
        seed_estate(conn, 30)
    return cli_db(database_url, tmp_path, monkeypatch)


def test_create_from_a_file_start_pause_resume_status(cli: CliDb, tmp_path: Path) -> None:
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("device_id\n" + "".join(f"{device(n)}\n" for n in range(1, 21)))
    made = cli.invoke(
        app,
        "create",
        "fw-2.1.3",
        "--target-version",
        "02010300",
        "--cohort",
        str(cohort),
        "--phase",
        "pilot=5",
        "--phase",
        "wave=rest",
        "--error-threshold",
        "15",
    )
    assert made.exit_code == 0, made.output
    assert "pilot 5, wave 15" in made.output
    for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        moved = cli.invoke(app, action, "fw-2.1.3")
        assert moved.exit_code == 0, moved.output
        assert state in moved.output
    status = json.loads(cli.invoke(app, "status", "fw-2.1.3", "--json").stdout)
    assert set(status) >= {"name", "state", "reason", "phases"}
    assert status["state"] == "running"
    assert [(p["label"], p["size"], p["state"]) for p in status["phases"]] == [
        ("pilot", 5, "open"),
        ("wave", 15, "waiting"),
    ]
    assert set(status["phases"][0]) == {
        "label",
        "size",
        "state",
        "dispatched",
        "succeeded",
        "failed",
        "unconfirmed",
        "held",
    }
    listed = json.loads(cli.invoke(app, "list", "--json").stdout)
    assert [(c["name"], c["state"], c["hubs"]) for c in listed] == [("fw-2.1.3", "running", 20)]
    again = cli.invoke(app, "resume", "fw-2.1.3")
    assert again.exit_code == 1
    assert "cannot resume" in again.output


def test_create_from_filters_and_refusals(cli: CliDb, tmp_path: Path) -> None:
    made = cli.invoke(
        app,
        "create",
        "north",
        "--target-version",
        "02010300",
        "--region",
        "north",
        "--phase",
        "all=rest",
    )
    assert made.exit_code == 0, made.output
    assert "all 10" in made.output  # hubs 3, 6, ..., 30
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{device(1)}\nnot-a-device\n")
    refused = cli.invoke(
        app,
        "create",
        "x",
        "--target-version",
        "02010300",
        "--cohort",
        str(bad),
        "--phase",
        "a=rest",
    )
    assert refused.exit_code == 1
    assert "not a Device ID" in refused.output
    short = cli.invoke(
        app, "create", "y", "--target-version", "02010300", "--region", "south", "--phase", "a=3"
    )
    assert short.exit_code == 1
    assert "'rest'" in short.output
    assert cli.invoke(app, "status", "nope").exit_code == 1


def test_csp_regions(cli: CliDb, engine: Engine) -> None:
    csps.clear_cache()
    added = cli.invoke(csp_app, "add", "csp-n", "--region", "north", "--region", "central")
    assert added.exit_code == 0, added.output
    listed = json.loads(cli.invoke(csp_app, "list", "--json").stdout)
    assert listed[0]["regions"] == ["central", "north"]
    assert cli.invoke(csp_app, "add", "csp-x", "--region", "west").exit_code == 2
    assert cli.invoke(csp_app, "regions", "csp-n").exit_code == 0
    with engine.connect() as conn:
        assert csps.regions_of(conn, "csp-n") is None


def test_text_output(cli: CliDb) -> None:
    assert "no campaigns" in cli.invoke(app, "list").output
    made = cli.invoke(
        app,
        *("create", "fw", "--target-version", "02010300", "--region", "south"),
        *("--phase", "pilot=2", "--phase", "rest=rest", "--success-threshold", "50"),
    )
    assert made.exit_code == 0, made.output
    listed = cli.invoke(app, "list").output
    assert "fw" in listed
    assert "draft" in listed
    shown = cli.invoke(app, "status", "fw").output
    assert "campaign 'fw': draft (draft: not started)" in shown
    assert "50 % succeeded opens the next phase" in shown
    assert "pilot" in shown
    assert "waiting" in shown
