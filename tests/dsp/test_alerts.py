"""AlertBuilder: one call builds a batch's alerts, each as build() would, in order."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest
from lxml import etree

from chfw.core.domain import AlertKind, DeviceId, DuisVersion, FirmwareVersion, PlannedAlert
from chfw.core.duis import ResponseId, bundled_schemas, official_schemas
from chfw.core.duis.render import SR_NAMESPACE
from chfw.core.signing import verify_document
from chfw.dsp.alerts import (
    AlertBuilder,
    AlertRequest,
    BuiltAlert,
    ParkedAlert,
    counters_needed,
)
from chfw.exceptions import (
    ConfigError,
    FirmwareVersionNotCarriable,
    InvalidValueError,
    SchemaValidationError,
)
from tests.small_dsp import ALICE, BOB, CH1, CH2, DCC, SIGNER, TRUST

AT = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
V51, V50 = DuisVersion(5, 1), DuisVersion(5, 0)
NEW = FirmwareVersion.parse("02010300")
TOO_LONG = FirmwareVersion.parse("0102030405")


def builder(*, signed: bool = True) -> AlertBuilder:
    return AlertBuilder(DCC, SIGNER if signed else None, bundled_schemas())


def n64(device: DeviceId = CH1, version: FirmwareVersion = NEW) -> AlertRequest:
    return AlertRequest(PlannedAlert(ALICE, AlertKind.N64, V51), device, version)


def n999(device: DeviceId = CH1, version: FirmwareVersion = NEW) -> AlertRequest:
    return AlertRequest(PlannedAlert(BOB, AlertKind.N999, V50), device, version)


def text(document: bytes, name: str) -> str | None:
    return etree.fromstring(document).findtext(f".//{{{SR_NAMESPACE}}}{name}")


class TestBuildMany:
    def test_each_alert_signed_and_in_request_order(self) -> None:
        requests = [n64(CH1), n999(CH1), n64(CH2)]
        built = builder().build_many(requests, AT, count(1))
        assert [b.planned for b in built if isinstance(b, BuiltAlert)] == [
            r.planned for r in requests
        ]
        assert [str(b.response_id) for b in built if isinstance(b, BuiltAlert)] == [
            f"{DCC}:{CH1}:1",
            f"{DCC}:{CH1}:2",
            f"{DCC}:{CH2}:3",
        ]
        for alert, request in zip(built, requests, strict=True):
            assert isinstance(alert, BuiltAlert)
            verified = verify_document(alert.document, TRUST)
            assert verified.root.findtext(f".//{{{SR_NAMESPACE}}}DeviceID") == str(
                request.device_id
            )
            assert text(alert.document, "DCCAlertCode") == request.planned.kind.value
            assert text(alert.document, "ResponseID") == str(alert.response_id)

    def test_same_documents_as_one_at_a_time(self) -> None:
        requests = [n64(CH1), n999(CH2), n64(CH2)]
        together = builder(signed=False).build_many(requests, AT, count(10))
        one_by_one = [
            builder(signed=False).build(r.planned, r.device_id, r.firmware_version, AT, n)
            for n, r in enumerate(requests, start=10)
        ]
        assert together == one_by_one

    def test_an_unrenderable_alert_is_returned_and_the_others_built(self) -> None:
        requests = [n64(CH1), n64(CH2, TOO_LONG), n999(CH2, TOO_LONG)]
        first, refused, mismatch = builder().build_many(requests, AT, count(1))
        assert isinstance(first, BuiltAlert)
        assert isinstance(refused, FirmwareVersionNotCarriable)
        assert "octets" in str(refused)
        # The N999 carries no version, so the long one does not stop it.
        assert isinstance(mismatch, BuiltAlert)
        assert text(mismatch.document, "DCCAlertCode") == "N999"
        # The refused alert used its counter: counters are never reused.
        assert str(mismatch.response_id).endswith(":3")

    def test_build_raises_what_build_many_returns(self) -> None:
        with pytest.raises(FirmwareVersionNotCarriable):
            builder().build(n64().planned, CH1, TOO_LONG, AT, 1)

    def test_counter_out_of_range_refuses_that_alert_only(self) -> None:
        b = AlertBuilder(DCC, SIGNER, bundled_schemas())
        built = b.build_many([n64(), n64(), n64()], AT, [1, -1, 2])
        assert [type(x) for x in built] == [BuiltAlert, InvalidValueError, BuiltAlert]

    def test_invalid_document_parks_that_alert_only(self) -> None:
        # N64 on a DUIS 5.0 schema: that alert is parked; the N999 is built.
        class WrongVersion:
            def validate(self, document: object, version: DuisVersion) -> None:
                bundled_schemas().validate(document, V50)  # type: ignore[arg-type]

        b = AlertBuilder(DCC, SIGNER, WrongVersion())  # type: ignore[arg-type]
        built, parked = b.build_many([n999(), n64()], AT, range(1, 9))
        assert isinstance(built, BuiltAlert)
        assert isinstance(parked, ParkedAlert)
        assert isinstance(parked.reason, SchemaValidationError)
        assert str(parked.response_id) == f"{DCC}:{CH1}:2"
        with pytest.raises(SchemaValidationError):
            b.build(n64().planned, CH1, NEW, AT, 3)

    def test_a_version_without_schema_parks_its_alerts_only(self, tmp_path: Path) -> None:
        # Official schemas configured, with no folder for any version: 5.1 and 5.0 both
        # missing. Each alert is parked with the reason, counters taken, none raised.
        b = AlertBuilder(DCC, SIGNER, official_schemas(tmp_path))
        parked = b.build_many([n64(CH1), n999(CH2)], AT, range(1, 9))
        assert [type(p) for p in parked] == [ParkedAlert, ParkedAlert]
        reasons = [p.reason for p in parked if isinstance(p, ParkedAlert)]
        assert all(isinstance(r, ConfigError) for r in reasons)
        assert "no official DUIS 5.1 schemas" in str(reasons[0])
        assert "no official DUIS 5.0 schemas" in str(reasons[1])
        with pytest.raises(ConfigError, match=r"DUIS 5\.1"):
            b.build(n64().planned, CH1, NEW, AT, 3)

    def test_a_given_response_id_is_kept_and_takes_no_counter(self) -> None:
        given = ResponseId(DCC, CH2, 77)
        request = AlertRequest(n64(CH2).planned, CH2, NEW, given)
        assert counters_needed([request, n64(CH1)]) == 1
        kept, fresh = builder().build_many([request, n64(CH1)], AT, [5])
        assert isinstance(kept, BuiltAlert)
        assert isinstance(fresh, BuiltAlert)
        assert kept.response_id == given
        assert text(kept.document, "ResponseID") == str(given)
        assert str(fresh.response_id) == f"{DCC}:{CH1}:5"

    def test_empty(self) -> None:
        assert builder().build_many([], AT) == []

    def test_too_few_counters_is_the_callers_error(self) -> None:
        with pytest.raises(ValueError, match="2 counters needed, fewer given") as raised:
            builder().build_many([n64(CH1), n64(CH2)], AT, [1])
        assert not isinstance(raised.value, InvalidValueError)  # not one alert's fault
