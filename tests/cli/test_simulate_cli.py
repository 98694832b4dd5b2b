"""`chfw simulate`: estate files on disk, and a wave posted (or dry-run) with its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import uvicorn
from typer.testing import CliRunner

from chfw.cli.simulate import app
from chfw.core.domain import FirmwareVersion
from chfw.dsp.estate_file import EstateRecord, RejectedRow, parse_csv, parse_json
from chfw.sim import generate_estate, generate_wave, read_suppliers_json
from chfw.sim.wave import DEFAULT_SCHEDULED_AT
from tests.live import running
from tests.pki import Pki
from tests.sim.fake_intake import InMemoryPipeline, fake_intake_app
from tests.sim.live import serve

runner = CliRunner()
CREDENTIAL = "csp-cli.0123456789abcdef"


class TestEstateCommand:
    """`simulate estate` writes an importable estate and the suppliers beside it."""

    def test_writes_csv_and_suppliers(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["estate", "--hubs", "300", "--seed", "7", "--out", str(tmp_path), "--no-progress"]
        )
        assert result.exit_code == 0, result.output
        with (tmp_path / "estate.csv").open() as f:
            items = list(parse_csv(f))
        assert not [item for item in items if isinstance(item, RejectedRow)]
        devices = {item.device_id for item in items if isinstance(item, EstateRecord)}
        assert devices == {hub.device_id for hub in generate_estate(300, 7)}
        with (tmp_path / "suppliers.json").open() as f:
            suppliers = read_suppliers_json(f)
        assert {s.user_id for s in suppliers} == {
            s.user_id for s in generate_estate(300, 7).suppliers
        }
        assert "300 CH(s)" in result.output

    def test_writes_json(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app,
            ["estate", "--hubs", "50", "--out", str(tmp_path), "--format", "json", "--no-progress"],
        )
        assert result.exit_code == 0, result.output
        with (tmp_path / "estate.json").open() as f:
            records = [item for item in parse_json(f) if isinstance(item, EstateRecord)]
        assert len({record.device_id for record in records}) == 50

    def test_unknown_format(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["estate", "--hubs", "5", "--out", str(tmp_path), "--format", "xml"]
        )
        assert result.exit_code == 1
        assert "csv or json" in result.output


class TestWaveCommand:
    """`simulate wave` rebuilds the estate from the seed, posts the wave, reports the truth."""

    def test_dry_run_json_is_the_ground_truth(self) -> None:
        result = runner.invoke(
            app,
            [
                "wave",
                "--hubs",
                "500",
                "--seed",
                "3",
                "--target-version",
                "02010400",
                "--scheduled-at",
                DEFAULT_SCHEDULED_AT.isoformat(),
                "--dry-run",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        wave = generate_wave(generate_estate(500, 3), FirmwareVersion.parse("02010400"), 3)
        assert report["ground_truth"] == json.loads(json.dumps(wave.ground_truth.as_json()))
        assert report["posted"] is None

    def test_posts_to_an_intake(self) -> None:
        estate = generate_estate(400, seed=9)
        pipeline = InMemoryPipeline(estate)
        with serve(fake_intake_app(pipeline, CREDENTIAL)) as url:
            result = runner.invoke(
                app,
                ["wave", "--hubs", "400", "--seed", "9", "--url", url, "--json"],
                env={"CHFW_CSP_CREDENTIAL": CREDENTIAL},
            )
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        truth = report["ground_truth"]
        assert report["posted"]["statuses"] == {k: v for k, v in truth["statuses"].items() if v}
        assert report["posted"]["alerts"] == {k: v for k, v in truth["alerts"].items() if v}
        assert pipeline.alerts_by_recipient() == truth["alerts_by_recipient"]

    def test_posts_to_an_https_intake_with_its_ca(self, tmp_path: Path) -> None:
        pki = Pki.create(tmp_path)
        estate = generate_estate(50, seed=4)
        pipeline = InMemoryPipeline(estate)
        config = uvicorn.Config(
            fake_intake_app(pipeline, CREDENTIAL),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(pki.server_cert),
            ssl_keyfile=str(pki.server_key),
        )
        with running(config) as server:
            port = server.servers[0].sockets[0].getsockname()[1]
            args = ["wave", "--hubs", "50", "--seed", "4", "--url", f"https://127.0.0.1:{port}"]
            result = runner.invoke(
                app,
                [*args, "--ca-bundle", str(pki.ca), "--json"],
                env={"CHFW_CSP_CREDENTIAL": CREDENTIAL},
            )
            missing = runner.invoke(
                app,
                [*args, "--ca-bundle", str(tmp_path / "nope.pem")],
                env={"CHFW_CSP_CREDENTIAL": CREDENTIAL},
            )
        assert result.exit_code == 0, result.output
        truth = json.loads(result.output)["ground_truth"]
        assert pipeline.alerts_by_recipient() == truth["alerts_by_recipient"]
        assert missing.exit_code == 1
        assert "cannot use CA bundle" in missing.output
        assert "nope.pem" in missing.output

    def test_human_summary(self) -> None:
        result = runner.invoke(app, ["wave", "--hubs", "200", "--dry-run", "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "alerts N64" in result.output
        assert "90-B3-D5-1F-30-01-00-03" in result.output

    def test_wrong_credential(self) -> None:
        estate = generate_estate(10, seed=1)
        with serve(fake_intake_app(InMemoryPipeline(estate), CREDENTIAL)) as url:
            result = runner.invoke(
                app, ["wave", "--hubs", "10", "--url", url, "--credential", "nope"]
            )
        assert result.exit_code == 1
        assert "401" in result.output
        assert "--credential" in result.output

    def test_needs_url_and_credential(self) -> None:
        result = runner.invoke(app, ["wave", "--hubs", "10"], env={"CHFW_CSP_CREDENTIAL": ""})
        assert result.exit_code == 1
        assert "--url" in result.output

    def test_bad_target_version(self) -> None:
        result = runner.invoke(app, ["wave", "--hubs", "1", "--dry-run", "--target-version", "XYZ"])
        assert result.exit_code == 1
        assert "--target-version" in result.output
