"""`chfw estate import|stats`: files validated row by row, written in batches, summarised."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.estate import app
from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.dsp.store import audit, estate, inventory, users
from tests.cli.dbcli import CliDb, cli_db

HEADER = "device_id,csp_region,mpxn,fuel,import_supplier,export_supplier,gas_supplier\n"
IS = "90-B3-D5-1F-30-01-00-00"


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestImport:
    """import writes the good rows and lists the bad ones."""

    def test_csv_with_some_bad_rows(self, cli: CliDb, engine: Engine, tmp_path: Path) -> None:
        rows = [f"{i:016X},north,{i:013d},electricity,{IS},," for i in range(1, 51)]
        rows += ["nope,north,,,,,", "0000000000000001,mars,,,,,"]
        path = write(tmp_path, "estate.csv", HEADER + "\n".join(rows) + "\n")
        result = cli.invoke(app, "import", str(path), "--batch-size", "7", "--no-progress")
        assert result.exit_code == 3, result.output  # some rows rejected: documented exit 3
        assert "50 record(s) imported, 2 rejected" in result.output
        assert "2 row(s) of estate.csv rejected (exit 3)" in result.stderr
        assert "line 52: Device ID 'nope'" in result.output
        assert "line 53: CSP region 'mars'" in result.output
        with engine.connect() as conn:
            assert (estate.count_hubs(conn), estate.count_meter_points(conn)) == (50, 50)
            entry = audit.list_recent(conn, 1)[0]
        assert entry.action == "estate.import"
        assert (entry.detail["accepted"], entry.detail["rejected"]) == (50, 2)

    def test_suppliers_that_are_not_service_users_are_named(
        self, cli: CliDb, engine: Engine, tmp_path: Path
    ) -> None:
        with engine.begin() as conn:
            users.add_user(
                conn,
                users.ServiceUser(UserId.parse(IS), "Known", frozenset({"IS"}), DuisVersion(5, 1)),
            )
        other = "90-B3-D5-1F-30-01-00-99"
        rows = [f"0000000000000001,north,{1:013d},electricity,{IS},,"]
        rows += [f"0000000000000002,north,{2:013d},electricity,{other},,"]
        path = write(tmp_path, "estate.csv", HEADER + "\n".join(rows) + "\n")
        result = cli.invoke(app, "import", str(path), "--no-progress")
        assert result.exit_code == 0, result.output  # a warning, not a rejection
        assert "1 supplier(s) named in the estate are not Service Users" in result.stderr
        assert other in result.stderr
        assert IS not in result.stderr

    def test_json_nested(self, cli: CliDb, engine: Engine, tmp_path: Path) -> None:
        document = {
            "hubs": [
                {
                    "device_id": "00-1D-A1-00-00-00-00-42",
                    "csp_region": "south",
                    "meter_points": [{"mpxn": "1234567", "fuel": "gas", "gas_supplier": IS}],
                }
            ]
        }
        path = write(tmp_path, "estate.json", json.dumps(document))
        result = cli.invoke(app, "import", str(path))
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            points = estate.meter_points_for(conn, DeviceId.parse("00-1D-A1-00-00-00-00-42"))
        assert [p.identifier for p in points] == ["1234567"]

    def test_only_first_rejections_listed(self, cli: CliDb, tmp_path: Path) -> None:
        rows = "".join(f"bad{i},north\n" for i in range(30)) + "00-1D-A1-00-00-00-00-42,north\n"
        path = write(tmp_path, "e.csv", "device_id,csp_region\n" + rows)
        result = cli.invoke(app, "import", str(path), "--show-rejected", "5")
        assert result.exit_code == 3, result.output
        assert "first 5 rejected rows" in result.output
        assert "... and 25 more" in result.output

    def test_every_row_rejected_fails(self, cli: CliDb, tmp_path: Path) -> None:
        path = write(tmp_path, "e.csv", "device_id,csp_region\nx,north\ny,south\n")
        result = cli.invoke(app, "import", str(path))
        assert result.exit_code == 1
        assert "every row was rejected" in result.output

    def test_empty_file_fails(self, cli: CliDb, tmp_path: Path) -> None:
        result = cli.invoke(app, "import", str(write(tmp_path, "e.csv", "device_id,csp_region\n")))
        assert result.exit_code == 1
        assert "no records" in result.output

    @pytest.mark.parametrize(
        ("name", "text", "args", "fragment"),
        [
            ("e.txt", "x", [], "cannot tell the format"),
            ("e.csv", "device,region\n", [], "CSV header"),
            ("e.dat", "[1,", ["--format", "json"], "JSON line 1"),
        ],
    )
    def test_file_errors_are_clean(
        self, cli: CliDb, tmp_path: Path, name: str, text: str, args: list[str], fragment: str
    ) -> None:
        result = cli.invoke(app, "import", str(write(tmp_path, name, text)), *args)
        assert result.exit_code == 1
        assert fragment in result.output
        assert "Traceback" not in result.output

    def test_missing_file(self, cli: CliDb, tmp_path: Path) -> None:
        result = cli.invoke(app, "import", str(tmp_path / "none.csv"))
        assert result.exit_code == 1
        assert "cannot read" in result.output

    def test_not_utf8(self, cli: CliDb, tmp_path: Path) -> None:
        path = tmp_path / "e.csv"
        path.write_bytes(b"device_id,csp_region\n\xff\xfe,north\n")
        result = cli.invoke(app, "import", str(path))
        assert result.exit_code == 1
        assert "not UTF-8" in result.output


class TestStats:
    """stats counts CHs per region and per active firmware version."""

    def test_stats_json(self, cli: CliDb, engine: Engine, tmp_path: Path) -> None:
        rows = "".join(f"{i:016X},{('north', 'south')[i % 2]}\n" for i in range(1, 5))
        cli.invoke(app, "import", str(write(tmp_path, "e.csv", "device_id,csp_region\n" + rows)))
        with engine.begin() as conn:
            inventory.set_active_firmware(
                conn,
                DeviceId.from_int(1),
                FirmwareVersion.parse("0102"),
                datetime.now(UTC),
            )
        result = cli.invoke(app, "stats", "--json")
        text = cli.invoke(app, "stats")
        body = json.loads(result.stdout)
        assert body["hubs"] == 4
        assert body["hubs_by_region"] == {"north": 2, "south": 2}
        assert body["firmware_distribution"] == {"0102": 1, "never reported": 3}
        assert body["firmware_by_region"]["south"] == {"0102": 1, "never reported": 1}
        assert "0102: 1" in text.output
