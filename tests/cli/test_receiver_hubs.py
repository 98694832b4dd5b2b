"""`chfw receiver hubs import` and readiness over the supplier's own estate; back-office
commands refuse a database without the back office, naming it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.cli import app as chfw
from chfw.shared.db.engine import create_engine_for, display_url
from chfw.supplier.schema import bo_estate
from tests.cli.dbcli import CliDb, cli_db
from tests.supplier.recorded import START, device, record


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


def estate_file(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "estate.csv"
    path.write_text(rows, encoding="utf-8")
    return path


class TestImport:
    def test_import_with_labels_then_again(
        self, cli: CliDb, tmp_path: Path, engine: Engine
    ) -> None:
        first = estate_file(
            tmp_path,
            "mpan,device_id,label\n1,"
            + f"{device(1)},north site\n2,{device(2)},\n3,not-an-id,x\n4,{device(1)},dup\n",
        )
        result = cli.invoke(chfw, "receiver", "hubs", "import", str(first))
        assert result.exit_code == 0, result.output
        assert (
            f"imported 2 CHs from {first}: 2 new, 0 already in the estate (1 lines rejected, "
            "1 duplicates ignored); the estate holds 2 CHs, 2 of them never sent an alert"
        ) in result.stdout
        assert f"{first}:4: rejected 'not-an-id'" in result.stderr
        again = estate_file(tmp_path, f"device_id,label\n{device(2)},south\n{device(3)},\n")
        result = cli.invoke(chfw, "receiver", "hubs", "import", str(again))
        assert result.exit_code == 0, result.output
        assert "1 new, 1 already in the estate" in result.stdout
        with engine.connect() as conn:
            labels = dict(conn.execute(sa.select(bo_estate.c.device_id, bo_estate.c.label)).all())
        assert labels == {
            device(1).hex: "north site",
            device(2).hex: "south",
            device(3).hex: None,
        }

    def test_hub_says_an_imported_ch_has_no_alert_yet(self, cli: CliDb, tmp_path: Path) -> None:
        ids = estate_file(tmp_path, f"device_id,label\n{device(5)},flat 3\n")
        assert cli.invoke(chfw, "receiver", "hubs", "import", str(ids)).exit_code == 0
        result = cli.invoke(chfw, "receiver", "hub", str(device(5)))
        assert result.exit_code == 1
        assert f"no firmware alert has been received for CH {device(5)}" in result.stderr
        assert "it is in the estate, label 'flat 3'" in result.stderr

    def test_a_file_without_ids_imports_nothing(self, cli: CliDb, tmp_path: Path) -> None:
        result = cli.invoke(
            chfw, "receiver", "hubs", "import", str(estate_file(tmp_path, "nope\n"))
        )
        assert result.exit_code == 1
        assert "names no valid Device ID; nothing imported" in result.stderr


class TestReadinessOverTheEstate:
    """{"ready", "below", "unknown"}: unknown counts imported CHs that never sent an alert."""

    def test_counts(self, cli: CliDb, tmp_path: Path, engine: Engine) -> None:
        record(engine, device(1), "0102", START)
        record(engine, device(2), "0200", START + timedelta(minutes=1))
        record(engine, device(3), "0101", START + timedelta(minutes=2))
        record(engine, device(4), None, START + timedelta(minutes=3))  # an N999, pending
        before = json.loads(
            cli.invoke(chfw, "receiver", "ready", "--min-version", "0102", "--json").stdout
        )
        assert {k: before[k] for k in ("ready", "below", "unknown")} == {
            "ready": 2,
            "below": 1,
            "unknown": 1,
        }
        ids = "".join(f"{device(n)}\n" for n in range(1, 12))  # 11 CHs, 7 never heard of
        result = cli.invoke(chfw, "receiver", "hubs", "import", str(estate_file(tmp_path, ids)))
        assert result.exit_code == 0, result.output
        assert "the estate holds 11 CHs, 7 of them never sent an alert" in result.stdout
        after = cli.invoke(chfw, "receiver", "ready", "--min-version", "0102", "--json")
        assert after.exit_code == 0, after.output
        counts = json.loads(after.stdout)
        assert {k: counts[k] for k in ("ready", "below", "unknown")} == {
            "ready": 2,
            "below": 1,
            "unknown": 1 + 7,
        }
        assert counts["unknown_never_alerted"] == 7
        line = cli.invoke(chfw, "receiver", "ready", "--min-version", "0102", "--count").stdout
        assert "2 CHs at or above 0102 (1 below, 8 with a version not known yet" in line
        assert "7 of the unknown never sent an alert" in line


class TestNoBackOffice:
    """A database without the back office is refused, named, with how to create it."""

    def test_missing_sqlite_file_is_not_created(self, tmp_path: Path) -> None:
        cli = CliDb(f"sqlite:///{tmp_path / 'elsewhere' / 'chfw.db'}")
        (tmp_path / "elsewhere").mkdir()
        result = cli.invoke(chfw, "receiver", "alerts")
        assert result.exit_code == 1
        assert "no database at sqlite:///" in result.stderr
        assert "chfw receiver upgrade --database" in result.stderr
        assert not (tmp_path / "elsewhere" / "chfw.db").exists()

    def test_a_database_without_the_schema(self, empty_database_url: str, tmp_path: Path) -> None:
        engine = create_engine_for(empty_database_url)
        with engine.connect():  # the database exists (SQLite: its file), with no table
            pass
        engine.dispose()
        ids = estate_file(tmp_path, f"{device(1)}\n")
        result = CliDb(empty_database_url).invoke(chfw, "receiver", "hubs", "import", str(ids))
        assert result.exit_code == 1
        shown = display_url(empty_database_url)
        assert f"the database {shown} has no back-office schema" in result.stderr
        assert "chfw receiver upgrade --database" in result.stderr
        password = sa.make_url(empty_database_url).password
        if password:
            assert str(password) not in result.stderr

    @pytest.mark.parametrize(
        "command",
        [
            ["receiver", "alerts"],
            ["receiver", "hub", "00-1D-A1-00-00-00-00-01"],
            ["receiver", "rejections"],
            ["receiver", "ready", "--min-version", "01"],
            ["pilot", "list"],
        ],
    )
    def test_every_back_office_command(self, tmp_path: Path, command: list[str]) -> None:
        url = f"sqlite:///{tmp_path / 'nothing.db'}"
        result = CliDb(url).invoke(chfw, *command, "--database", url)
        assert result.exit_code == 1
        assert url in result.stderr
        assert not (tmp_path / "nothing.db").exists()
