"""`chfw outbox`: operators list, inspect, retry and replay outbox rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.outbox import app
from chfw.dsp.store import audit, outbox
from chfw.dsp.store.outbox import AttemptResult
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.delivery.helpers import HUB_1, HUB_2, SUPPLIER_A, SUPPLIER_B, alert, enqueue

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


@pytest.fixture
def rows(engine: Engine) -> list[int]:
    """Four rows: delivered, dead (400), retrying (503, due in a year), untried."""
    ids = enqueue(
        engine,
        [
            alert("R-0", SUPPLIER_A, HUB_1),
            alert("R-1", SUPPLIER_A, HUB_2, "N999"),
            alert("R-2", SUPPLIER_B, HUB_1),
            alert("R-3", SUPPLIER_B, HUB_2),
        ],
        T0,
    )
    later = T0 + timedelta(days=365)
    with engine.begin() as conn:
        outbox.record_results(
            conn,
            [
                AttemptResult(ids[0], "delivered", T0, 204, None, 12.0),
                AttemptResult(ids[1], "rejected", T0, 400, "answered 400: bad signature", 8.0),
                AttemptResult(ids[2], "retry", T0, 503, "answered 503", 5.0, later),
            ],
        )
    return ids


def listed(cli: CliDb, *args: str) -> list[dict[str, object]]:
    result = cli.invoke(app, "list", "--json", *args)
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


class TestList:
    """list shows rows newest first, filtered by state, user and CH."""

    def test_all_rows_as_json(self, cli: CliDb, rows: list[int]) -> None:
        found = listed(cli)
        assert [r["response_id"] for r in found] == ["R-3", "R-2", "R-1", "R-0"]
        assert [r["state"] for r in found] == ["pending", "retrying", "dead", "delivered"]
        dead = found[2]
        assert dead["alert_code"] == "N999"
        assert dead["attempts"] == 1
        assert dead["user_id"] == str(SUPPLIER_A)
        assert dead["device_id"] == str(HUB_2)
        assert dead["last_error"] == "answered 400: bad signature"

    def test_filters(self, cli: CliDb, rows: list[int]) -> None:
        assert [r["response_id"] for r in listed(cli, "--state", "dead")] == ["R-1"]
        assert [r["response_id"] for r in listed(cli, "--state", "retrying")] == ["R-2"]
        assert [r["response_id"] for r in listed(cli, "--state", "pending")] == ["R-3", "R-2"]
        assert [r["response_id"] for r in listed(cli, "--user", str(SUPPLIER_B))] == ["R-3", "R-2"]
        assert [r["response_id"] for r in listed(cli, "--device", str(HUB_1), "--limit", "1")] == [
            "R-2"
        ]

    def test_table(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "list")
        assert result.exit_code == 0, result.output
        for text in ("R-", "retrying", "dead", "delivered", str(SUPPLIER_A), "bad signature"):
            assert text in result.stdout or text == "R-"
        assert str(rows[1]) in result.stdout

    def test_nothing_matches(self, cli: CliDb) -> None:
        result = cli.invoke(app, "list", "--state", "dead")
        assert result.exit_code == 0
        assert "no outbox rows match" in result.stdout

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (["--state", "lost"], "--state 'lost' is not one of"),
            (["--user", "nobody"], "User ID 'nobody'"),
            (["--device", "12"], "Device ID '12'"),
        ],
    )
    def test_bad_options(self, cli: CliDb, args: list[str], words: str) -> None:
        result = cli.invoke(app, "list", *args)
        assert result.exit_code == 2
        assert words in result.stderr
        assert "Traceback" not in result.output


class TestShow:
    """show prints one row with its attempts and its document."""

    def test_by_response_id_as_json(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "show", "R-1", "--json")
        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout)
        assert shown["id"] == rows[1]
        assert shown["state"] == "dead"
        assert shown["document"].encode() == alert("R-1").document
        assert shown["document_encoding"] == "utf-8"
        (attempt,) = shown["attempts_log"]
        assert (attempt["outcome"], attempt["status_code"]) == ("rejected", 400)
        assert attempt["error"] == "answered 400: bad signature"

    def test_by_id_as_text(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "show", str(rows[2]))
        assert result.exit_code == 0, result.output
        assert "R-2" in result.stdout
        assert "retrying" in result.stdout
        assert "retry" in result.stdout
        assert "503" in result.stdout
        assert alert("R-2").document.decode() in result.stdout

    def test_untried_row(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "show", "R-3")
        assert "none yet" in result.stdout

    def test_unknown(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "show", "R-404")
        assert result.exit_code == 1
        assert "no outbox row or archived alert with id or ResponseID 'R-404'" in result.stderr


class TestRetry:
    """retry makes pending rows due now; others are reported and left alone."""

    def test_due_now(self, cli: CliDb, engine: Engine, rows: list[int]) -> None:
        before = datetime.now(UTC)
        result = cli.invoke(app, "retry", "R-2", str(rows[3]))
        assert result.exit_code == 0, result.output
        assert "2 row(s) due now" in result.stdout
        with engine.connect() as conn:
            retried = outbox.get(conn, rows[2])
        assert retried is not None
        assert before <= retried.row.next_attempt_at <= datetime.now(UTC)

    def test_wrong_state_and_unknown(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "retry", "R-0", "R-2", "R-404")
        assert result.exit_code == 1
        assert "1 row(s) due now" in result.stdout
        assert f"row {rows[0]} left alone: it is delivered" in result.stderr
        assert "'R-404'" in result.stderr

    def test_every_pending_row_of_one_user(
        self, cli: CliDb, engine: Engine, rows: list[int]
    ) -> None:
        result = cli.invoke(app, "retry", "--user", str(SUPPLIER_A))
        assert result.exit_code == 0, result.output
        assert "0 pending row(s) due now" in result.stdout  # A's rows: delivered and dead
        before = datetime.now(UTC)
        result = cli.invoke(app, "retry", "--user", str(SUPPLIER_B))
        assert result.exit_code == 0, result.output
        assert "1 pending row(s) due now" in result.stdout  # R-2; R-3 was already due
        with engine.connect() as conn:
            retried = outbox.get(conn, rows[2])
            entry = audit.list_recent(conn)[0]
        assert retried is not None
        assert before <= retried.row.next_attempt_at <= datetime.now(UTC)
        assert retried.row.attempts == 1  # the horizon and the attempts are kept
        assert (entry.action, entry.actor) == ("outbox.retry_now", audit.current_actor())
        assert entry.detail == {"user_id": SUPPLIER_B.hex, "count": 1}

    def test_all_pending(self, cli: CliDb, engine: Engine, rows: list[int]) -> None:
        result = cli.invoke(app, "retry", "--all")
        assert result.exit_code == 0, result.output
        assert "1 pending row(s) due now" in result.stdout
        with engine.connect() as conn:
            assert outbox.next_due_at(conn) is not None
            dead = outbox.get(conn, rows[1])
        assert dead is not None
        assert dead.row.state == "dead"

    def test_leased_rows_are_left_to_their_worker(
        self, cli: CliDb, engine: Engine, rows: list[int]
    ) -> None:
        with engine.begin() as conn:
            (claimed,) = outbox.claim_due_rows(conn, datetime.now(UTC), 1, 3600)
        result = cli.invoke(app, "retry", "--all")
        assert "1 pending row(s) due now" in result.stdout  # R-2, not the leased R-3
        with engine.connect() as conn:
            leased = outbox.get(conn, claimed.id)
        assert leased is not None
        assert leased.row.lease_until is not None
        assert leased.row.next_attempt_at == leased.row.lease_until

    @pytest.mark.parametrize(
        "args",
        [[], ["R-1", "--all"], ["--all", "--user", str(SUPPLIER_A)], ["--all", "--all-parked"]],
    )
    def test_usage_errors(self, cli: CliDb, rows: list[int], args: list[str]) -> None:
        result = cli.invoke(app, "retry", *args)
        assert result.exit_code == 2
        assert "give one of" in result.stderr


class TestReplay:
    """replay puts dead rows back to pending, audited under the OS user."""

    def test_by_id(self, cli: CliDb, engine: Engine, rows: list[int]) -> None:
        result = cli.invoke(app, "replay", "R-1")
        assert result.exit_code == 0, result.output
        assert "1 row(s) back to pending" in result.stdout
        with engine.connect() as conn:
            replayed = outbox.get(conn, rows[1])
            (entry,) = audit.list_recent(conn)
        assert replayed is not None
        assert replayed.row.state == "pending"
        assert replayed.row.attempts == 1
        assert (entry.action, entry.actor) == ("outbox.replay", audit.current_actor())
        assert entry.detail["ids"] == [rows[1]]

    def test_all_dead_of_one_user(self, cli: CliDb, engine: Engine, rows: list[int]) -> None:
        result = cli.invoke(app, "replay", "--all-dead", "--user", str(SUPPLIER_B))
        assert result.exit_code == 0, result.output
        assert "0 row(s)" in result.stdout
        result = cli.invoke(app, "replay", "--all-dead", "--user", str(SUPPLIER_A))
        assert "1 row(s) back to pending" in result.stdout
        with engine.connect() as conn:
            assert outbox.counts(conn)["dead"] == 0

    def test_all_dead(self, cli: CliDb, engine: Engine, rows: list[int]) -> None:
        result = cli.invoke(app, "replay", "--all-dead")
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            assert outbox.counts(conn)["dead"] == 0

    def test_not_dead(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "replay", "R-0")
        assert result.exit_code == 1
        assert "left alone: it is delivered" in result.stderr

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            ([], "either outbox ids"),
            (["R-1", "--all-dead"], "either outbox ids"),
            (["R-1", "--user", str(SUPPLIER_A)], "--user goes with --all-dead"),
            (["--all-dead", "--user", "x"], "User ID 'x'"),
        ],
    )
    def test_usage_errors(self, cli: CliDb, rows: list[int], args: list[str], words: str) -> None:
        result = cli.invoke(app, "replay", *args)
        assert result.exit_code == 2
        assert words in result.stderr


class TestArchive:
    """archive moves old delivered rows away; show still finds them."""

    def test_dry_run_then_archive_then_show(self, cli: CliDb, rows: list[int]) -> None:
        dry = cli.invoke(app, "archive", "--older-than", "30", "--dry-run", "--json")
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.stdout)["would_move"] == 1
        assert len(listed(cli)) == 4  # a dry run moves nothing

        result = cli.invoke(app, "archive", "--older-than", "30", "--json")
        assert result.exit_code == 0, result.output
        moved = json.loads(result.stdout)
        assert (moved["alerts"], moved["attempts"], moved["batches"]) == (1, 1, 1)
        assert [r["response_id"] for r in listed(cli)] == ["R-3", "R-2", "R-1"]

        shown = cli.invoke(app, "show", "R-0", "--json")
        assert shown.exit_code == 0, shown.output
        detail = json.loads(shown.stdout)
        assert detail["state"] == "archived"
        assert [a["outcome"] for a in detail["attempts_log"]] == ["delivered"]

        again = cli.invoke(app, "archive", "--older-than", "30")
        assert again.exit_code == 0, again.output
        assert "0 delivered alert(s) and 0 attempt(s) archived" in again.stdout

    def test_recent_deliveries_stay(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "archive", "--older-than", "100000")
        assert result.exit_code == 0, result.output
        assert len(listed(cli)) == 4

    def test_negative_retention_is_refused(self, cli: CliDb, rows: list[int]) -> None:
        result = cli.invoke(app, "archive", "--older-than", "-1")
        assert result.exit_code == 2
        assert len(listed(cli)) == 4


class TestDatabaseErrors:
    """A database without the schema gives a one-line hint, not a traceback."""

    def test_unmigrated_database(
        self, empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cli = cli_db(empty_database_url, tmp_path, monkeypatch)
        result = cli.invoke(app, "list")
        assert result.exit_code == 1
        assert "chfw db upgrade" in result.stderr
        assert "Traceback" not in result.output
