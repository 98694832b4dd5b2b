"""`chfw pilot create|status|export|list` against a back office with known alerts."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli import app as chfw
from chfw.cli.pilot import app
from chfw.shared.db import audit
from chfw.supplier.schema import bo_audit_log
from tests.cli.dbcli import CliDb, cli_db
from tests.supplier.recorded import START, device, record


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    path = tmp_path / "cohort.csv"
    path.write_text(
        "device_id,note\n"
        + "".join(f"{device(n)},n{n}\n" for n in (1, 2, 3, 4))
        + "00-1D-A1-00,typo\n",
        encoding="utf-8",
    )
    return path


def create(cli: CliDb, cohort: Path, *extra: str) -> None:
    result = cli.invoke(
        app, "create", "wave-1", "--target-version", "0201", "--cohort", str(cohort), *extra
    )
    assert result.exit_code == 0, result.output


class TestCreate:
    """Rejected lines are reported with their line numbers; the rest make the cohort."""

    def test_create_reports_rejects(self, cli: CliDb, cohort: Path, engine: Engine) -> None:
        result = cli.invoke(
            app, "create", "wave-1", "--target-version", "02-01", "--cohort", str(cohort)
        )
        assert result.exit_code == 0, result.output
        assert "created pilot 'wave-1': target 0201, 4 CHs (1 lines rejected" in result.stdout
        assert f"{cohort}:6: rejected '00-1D-A1-00'" in result.stderr
        with engine.connect() as conn:
            (entry,) = audit.list_recent(conn, bo_audit_log)
        assert entry.action == "pilot.create"
        assert (entry.detail["cohort"], entry.detail["rejected"]) == (4, 1)

    def test_no_valid_id_creates_nothing(self, cli: CliDb, tmp_path: Path) -> None:
        bad = tmp_path / "bad.txt"
        bad.write_text("nope\n")
        result = cli.invoke(app, "create", "p", "--target-version", "01", "--cohort", str(bad))
        assert result.exit_code == 1
        assert "names no valid Device ID" in result.stderr
        assert "no pilots" in cli.invoke(app, "list").stdout

    def test_bad_target_and_missing_file(self, cli: CliDb, cohort: Path, tmp_path: Path) -> None:
        result = cli.invoke(app, "create", "p", "--target-version", "0x1", "--cohort", str(cohort))
        assert result.exit_code == 1
        assert "firmware version" in result.stderr
        missing = tmp_path / "missing.csv"
        result = cli.invoke(app, "create", "p", "--target-version", "01", "--cohort", str(missing))
        assert result.exit_code == 1
        assert "cannot read cohort file" in result.stderr

    def test_name_taken(self, cli: CliDb, cohort: Path) -> None:
        create(cli, cohort)
        result = cli.invoke(
            app, "create", "wave-1", "--target-version", "01", "--cohort", str(cohort)
        )
        assert result.exit_code == 1
        assert "already exists" in result.stderr


class TestStatusAndExport:
    """Progress as text and JSON; the export as CSV, to a file or stdout."""

    @pytest.fixture(autouse=True)
    def history(self, engine: Engine, cli: CliDb, cohort: Path) -> None:
        record(engine, device(1), "0201", START)
        record(engine, device(2), "0201", START + timedelta(hours=2))
        record(engine, device(3), "0100", START)
        create(cli, cohort)

    def test_status_text(self, cli: CliDb) -> None:
        result = cli.invoke(app, "status", "wave-1")
        assert result.exit_code == 0, result.output
        assert "cohort 4 CHs" in result.stdout
        assert "activated         2 (50.0%)" in result.stdout
        assert "50 % (2 CHs)" in result.stdout
        assert "02:00:00 after the first activation" in result.stdout
        (ninety,) = [line for line in result.stdout.splitlines() if "90 % (4 CHs)" in line]
        assert ninety.endswith("not reached")

    def test_status_json(self, cli: CliDb) -> None:
        result = cli.invoke(app, "status", "wave-1", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert (data["cohort"], data["activated"], data["share"]) == (4, 2, 0.5)
        assert data["first_activation"] == START.isoformat()
        assert data["milestones"][0]["seconds_after_first"] == 7200.0
        assert [point["activated"] for point in data["series"]] == [1, 2]

    def test_export_to_file(self, cli: CliDb, tmp_path: Path) -> None:
        out = tmp_path / "wave-1.csv"
        result = cli.invoke(app, "export", "wave-1", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert "wrote 4 CHs" in result.stdout
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert [(r["device_id"], r["status"]) for r in rows] == [
            (str(device(1)), "activated"),
            (str(device(2)), "activated"),
            (str(device(3)), "not_yet"),
            (str(device(4)), "not_yet"),
        ]
        assert rows[2]["active_version"] == "0100"

    def test_export_to_stdout(self, cli: CliDb) -> None:
        result = cli.invoke(app, "export", "wave-1")
        assert result.exit_code == 0, result.output
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == ["device_id", "active_version", "activated_at", "status"]
        assert len(rows) == 5

    def test_unknown_pilot(self, cli: CliDb) -> None:
        result = cli.invoke(app, "status", "wave-2")
        assert result.exit_code == 1
        assert "no pilot 'wave-2' (pilots: wave-1)" in result.stderr

    def test_list(self, cli: CliDb) -> None:
        result = cli.invoke(app, "list", "--json")
        assert result.exit_code == 0, result.output
        (pilot,) = json.loads(result.stdout)
        assert (pilot["name"], pilot["target_version"], pilot["cohort"]) == ("wave-1", "0201", 4)
        assert "wave-1" in cli.invoke(app, "list").stdout


class TestWiring:
    """`chfw pilot` is a group of the root command; --database picks the back office."""

    def test_database_option_overrides_the_settings(
        self, database_url: str, cohort: Path, tmp_path: Path, engine: Engine
    ) -> None:
        elsewhere = CliDb(f"sqlite:///{tmp_path / 'not-this-one.db'}")
        result = elsewhere.invoke(
            chfw,
            "pilot",
            "create",
            "p",
            "--target-version",
            "01",
            "--cohort",
            str(cohort),
            "--database",
            database_url,
        )
        assert result.exit_code == 0, result.output
        listed = elsewhere.invoke(chfw, "pilot", "list", "--database", database_url)
        assert "p" in listed.stdout
        # Without --database: the settings' database, which has no schema.
        result = elsewhere.invoke(chfw, "pilot", "list")
        assert result.exit_code == 1
        assert "chfw receiver upgrade --database" in result.stderr


class TestEditAndDelete:
    """A pilot's name, target, description and cohort change; delete needs --yes. Audited."""

    def test_edit_everything(
        self, cli: CliDb, cohort: Path, tmp_path: Path, engine: Engine
    ) -> None:
        create(cli, cohort)
        more, fewer = tmp_path / "more.txt", tmp_path / "fewer.txt"
        more.write_text(f"{device(9)}\n{device(1)}\n", encoding="utf-8")
        fewer.write_text(f"{device(2)}\n{device(3)}\n", encoding="utf-8")
        result = cli.invoke(
            app,
            "edit",
            "wave-1",
            "--rename",
            "wave-1b",
            "--target-version",
            "0202",
            "--description",
            "moved to 0202",
            "--add",
            str(more),
            "--remove",
            str(fewer),
        )
        assert result.exit_code == 0, result.output
        assert "pilot 'wave-1b': target 0202, 3 CHs (was 'wave-1': target 0201, 4 CHs)" in (
            result.stdout
        )
        (listed,) = json.loads(cli.invoke(app, "list", "--json").stdout)
        assert (listed["name"], listed["target_version"], listed["cohort"]) == (
            "wave-1b",
            "0202",
            3,
        )
        assert listed["description"] == "moved to 0202"
        with engine.connect() as conn:
            entry = audit.list_recent(conn, bo_audit_log)[0]
        assert entry.action == "pilot.edit"
        assert (entry.detail["before"]["cohort"], entry.detail["after"]["cohort"]) == (4, 3)

    def test_edit_refuses_an_empty_cohort_and_a_taken_name(self, cli: CliDb, cohort: Path) -> None:
        create(cli, cohort)
        create_other = cli.invoke(
            app, "create", "other", "--target-version", "01", "--cohort", str(cohort)
        )
        assert create_other.exit_code == 0, create_other.output
        emptied = cli.invoke(app, "edit", "wave-1", "--remove", str(cohort))
        assert emptied.exit_code == 1
        assert "would have an empty cohort" in emptied.stderr
        taken = cli.invoke(app, "edit", "wave-1", "--rename", "other")
        assert taken.exit_code == 1
        assert "pilot 'other' already exists" in taken.stderr
        nothing = cli.invoke(app, "edit", "wave-1")
        assert (nothing.exit_code, "nothing to change" in nothing.stderr) == (1, True)
        assert json.loads(cli.invoke(app, "status", "wave-1", "--json").stdout)["cohort"] == 4

    def test_delete_needs_yes(self, cli: CliDb, cohort: Path, engine: Engine) -> None:
        create(cli, cohort)
        refused = cli.invoke(app, "delete", "wave-1")
        assert refused.exit_code == 1
        assert "add --yes" in refused.stderr
        done = cli.invoke(app, "delete", "wave-1", "--yes")
        assert done.exit_code == 0, done.output
        assert "deleted pilot 'wave-1' (4 CHs in its cohort)" in done.stdout
        assert "no pilots" in cli.invoke(app, "list").stdout
        with engine.connect() as conn:
            assert audit.list_recent(conn, bo_audit_log)[0].action == "pilot.delete"
        unknown = cli.invoke(app, "delete", "wave-1", "--yes")
        assert (unknown.exit_code, "no pilot 'wave-1'" in unknown.stderr) == (1, True)
