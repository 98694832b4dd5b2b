"""The suite's cases: which run for which version, --only/--skip, and what each body is.

Every body is checked in-process by chfw's own receiver check (no HTTP): the
genuine ones verify, each hostile one is refused for the reason the case names.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from chfw.core.domain import DuisVersion
from chfw.exceptions import ConfigError
from chfw.supplier.pipeline import Accepted, AlertReceiver, ReceiverConfig, Refused
from chfw.uit import CASES, GROUPS, Expect, select
from tests.uit.kit import Identity, material

V50, V51 = DuisVersion.parse("5.0"), DuisVersion.parse("5.1")


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Identity:
    return Identity.create(tmp_path_factory.mktemp("dsp"))


def _receiver(identity: Identity, version: DuisVersion) -> AlertReceiver:
    config = ReceiverConfig(trust=identity.trust, duis_version=version, max_bytes=8192)
    return AlertReceiver(config, sa.create_engine("sqlite://"))


class TestSelection:
    def test_each_version_gets_its_own_genuine_alert(self) -> None:
        ids51 = {case.id for case in select(V51)}
        ids50 = {case.id for case in select(V50)}
        assert ("valid.n64" in ids51, "valid.n999" in ids51) == (True, False)
        assert ("valid.n64" in ids50, "valid.n999" in ids50) == (False, True)
        assert "schema.version-too-long" not in ids50  # N999 carries no version

    def test_only_and_skip_take_groups_and_ids(self) -> None:
        assert {c.group for c in select(V51, only=["dtd"])} == {"dtd"}
        assert [c.id for c in select(V51, only=["signature.unsigned", "valid"])] == [
            "valid.n64",
            "valid.replay",
            "signature.unsigned",
        ]
        left = select(V51, skip=["dtd", "size.oversized"])
        assert not {c.group for c in left} & {"dtd"}
        assert "size.oversized" not in {c.id for c in left}

    def test_unknown_names_are_refused_with_the_groups(self) -> None:
        with pytest.raises(ConfigError, match="no case or group named dt, nope; groups are valid"):
            select(V51, only=["dt"], skip=["nope"])

    def test_nothing_left(self) -> None:
        with pytest.raises(ConfigError, match="leave no case to run"):
            select(V51, only=["valid"], skip=["valid"])

    def test_ids_are_unique_and_grouped(self) -> None:
        ids = [case.id for case in CASES]
        assert len(ids) == len(set(ids))
        assert set(GROUPS) == {"valid", "signature", "schema", "dtd", "signed-value", "size"}


class TestBodiesAgainstChfwsCheck:
    """What each case sends, read by chfw's receiver: the genuine verify, the hostile do not."""

    @pytest.mark.parametrize("version", [V50, V51, DuisVersion.parse("5.4")], ids=str)
    def test_every_case(self, identity: Identity, version: DuisVersion) -> None:
        receiver = _receiver(identity, version)
        made = material(identity, str(version))
        for case in select(version):
            prepared = case.prepare(made)
            checks = [receiver.check(body) for body in prepared.bodies]
            if case.expect is Expect.REFUSE:
                assert all(isinstance(c, Refused) for c in checks), (case.id, checks)
            else:
                assert all(isinstance(c, Accepted) for c in checks), (case.id, checks)
                (facts,) = {c.facts for c in checks if isinstance(c, Accepted)}
                assert facts.response_id == str(prepared.alert.response_id)
                assert facts.firmware_version == prepared.alert.firmware_version

    @pytest.mark.parametrize(
        ("case_id", "reason"),
        [
            ("signature.tampered", "digest mismatch"),
            ("signature.unsigned", "Signature"),
            ("signature.other-key", "signature"),
            ("signature.unknown-signer", "trust"),
            ("schema.unknown-element", "NotInDUIS"),
            ("schema.version-too-long", "FirmwareVersion"),
            ("schema.code-lacking", "DCCAlertCode"),
            ("dtd.internal-entity", "DOCTYPE"),
            ("size.oversized", "exceeds 8192 bytes"),
        ],
    )
    def test_refused_for_the_reason_named(
        self, identity: Identity, case_id: str, reason: str
    ) -> None:
        (case,) = select(V51, only=[case_id])
        (body,) = case.prepare(material(identity)).bodies
        checked = _receiver(identity, V51).check(body)
        assert isinstance(checked, Refused)
        assert reason.lower() in checked.reason.lower(), checked.reason

    def test_the_code_lacking_at_5_0_is_an_n64(self, identity: Identity) -> None:
        (case,) = select(V50, only=["schema.code-lacking"])
        (body,) = case.prepare(material(identity, "5.0")).bodies
        assert b'schemaVersion="5.0"' in body
        assert b"<sr:DCCAlertCode>N64</sr:DCCAlertCode>" in body
        checked = _receiver(identity, V50).check(body)
        assert isinstance(checked, Refused)
        assert "N64" in checked.reason

    def test_oversized_is_the_size_asked(self, identity: Identity) -> None:
        (case,) = select(V51, only=["size.oversized"])
        (body,) = case.prepare(material(identity, oversized=100_000)).bodies
        assert len(body) == 100_000

    def test_external_entities_name_a_host_that_never_resolves(self, identity: Identity) -> None:
        made = material(identity)
        for case in select(V51, only=["dtd"]):
            (body,) = case.prepare(made).bodies
            assert b"<!DOCTYPE" in body
            assert b"file:" not in body
            if b"SYSTEM" in body:
                assert b"https://uit.invalid/" in body


@pytest.mark.parametrize("size", [1, 16 * 1024 - 1, 64 * 1024 * 1024 + 1])
def test_an_oversized_body_must_be_oversized_and_no_more(identity: Identity, size: int) -> None:
    with pytest.raises(ConfigError, match=f"oversized body of {size} bytes"):
        material(identity, oversized=size)


class TestCasesCommand:
    """`chfw uit cases`: the list for scripts (--json) and a table never cut off a terminal."""

    def test_json_lists_the_cases_of_the_version(self) -> None:
        import json

        from typer.testing import CliRunner

        from chfw.cli import app

        result = CliRunner().invoke(app, ["uit", "cases", "--duis-version", "5.0", "--json"])
        assert result.exit_code == 0, result.output
        listed = json.loads(result.output)
        assert listed["duis_version"] == "5.0"
        expected = [c for c in CASES if c.applies(V50)]
        assert [row["id"] for row in listed["cases"]] == [c.id for c in expected]
        assert [row["expected"] for row in listed["cases"]] == [c.expect.value for c in expected]

    def test_the_table_is_whole_when_not_on_a_terminal(self) -> None:
        from typer.testing import CliRunner

        from chfw.cli import app

        result = CliRunner().invoke(app, ["uit", "cases", "--duis-version", "5.1"])
        assert result.exit_code == 0, result.output
        for case in (c for c in CASES if c.applies(V51)):
            assert case.id in result.output
            assert case.description in result.output  # not cut at 80 columns
