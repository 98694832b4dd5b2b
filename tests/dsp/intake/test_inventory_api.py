"""GET /su/v1/inventory/{device_id}: Service Users read the CHs they supply, nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_response
from chfw.dsp.intake import create_app
from chfw.dsp.store import audit, inventory_access
from chfw.shared.config import Settings
from tests.sim.live import serve
from tests.small_dsp import ALICE, BOB, CH1, CH2, CH3, Dsp, build_dsp

V1 = FirmwareVersion.parse("02010300")


def url(device: DeviceId | str) -> str:
    return f"/su/v1/inventory/{device}"


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    inventory_access.clear_cache()
    yield build_dsp(engine)
    inventory_access.clear_cache()


@pytest.fixture
def client(dsp: Dsp) -> Iterator[httpx.Client]:
    """The DSP's intake app, served on 127.0.0.1 by uvicorn."""
    with serve(create_app(Settings(), dsp.service)) as base, httpx.Client(base_url=base) as c:
        yield c


def token_for(dsp: Dsp, user: object) -> dict[str, str]:
    with dsp.engine.begin() as conn:
        token = inventory_access.issue_token(conn, user)  # type: ignore[arg-type]
    return {"authorization": f"Bearer {token}"}


def activate(dsp: Dsp, device: DeviceId, version: FirmwareVersion) -> None:
    message = encode_response(
        device_id=device,
        recipient=Eui64.parse("90-B3-D5-1F-30-01-00-00"),
        counter=7,
        result=ActivationResult.SUCCESS,
        firmware_version=version,
    )
    (result,) = dsp.service.submit([message], "north-csp")
    assert result.decision == "new_version"


class TestRead:
    """A Responsible Supplier reads the CH's active firmware as the inventory holds it."""

    def test_own_ch_after_activation(self, dsp: Dsp, client: httpx.Client) -> None:
        activate(dsp, CH1, V1)
        response = client.get(url(CH1), headers=token_for(dsp, BOB))
        assert response.status_code == 200
        body = response.json()
        assert body["device_id"] == "00-1D-A1-00-00-00-00-01"
        assert body["firmware_version"] == "02010300"
        assert body["firmware_changed_at"] is not None
        assert body["csp_region"] == "north"
        assert body["status"] == "commissioned"

    def test_version_is_null_before_any_activation(self, dsp: Dsp, client: httpx.Client) -> None:
        response = client.get(url(CH2), headers=token_for(dsp, ALICE))
        assert response.status_code == 200
        assert response.json()["firmware_version"] is None
        assert response.json()["csp_region"] == "south"

    def test_any_device_id_spelling(self, dsp: Dsp, client: httpx.Client) -> None:
        headers = token_for(dsp, ALICE)
        assert client.get(url(CH1.hex), headers=headers).status_code == 200
        assert client.get(url(CH1.hex.lower()), headers=headers).status_code == 200

    def test_not_a_device_id(self, dsp: Dsp, client: httpx.Client) -> None:
        response = client.get(url("not-a-hub"), headers=token_for(dsp, ALICE))
        assert response.status_code == 400
        assert "16 hex digits" in response.json()["detail"]


class TestRefusals:
    """Other suppliers' CHs and unknown CHs look the same (404); bad tokens get 401."""

    def test_other_suppliers_ch_is_not_found(self, dsp: Dsp, client: httpx.Client) -> None:
        response = client.get(url(CH2), headers=token_for(dsp, BOB))
        assert response.status_code == 404

    def test_unknown_ch_answers_exactly_like_someone_elses(
        self, dsp: Dsp, client: httpx.Client
    ) -> None:
        headers = token_for(dsp, BOB)
        theirs = client.get(url(CH2), headers=headers)
        unknown_id = DeviceId.parse("00-1D-A1-00-00-00-00-99")
        unknown = client.get(url(unknown_id), headers=headers)
        assert theirs.status_code == unknown.status_code == 404
        # Same wording apart from the ID asked for: nothing tells the two apart.
        assert theirs.json()["detail"].replace(str(CH2), "X") == unknown.json()["detail"].replace(
            str(unknown_id), "X"
        )

    def test_ch_without_suppliers_is_not_found(self, dsp: Dsp, client: httpx.Client) -> None:
        assert client.get(url(CH3), headers=token_for(dsp, ALICE)).status_code == 404

    def test_no_token(self, dsp: Dsp, client: httpx.Client) -> None:
        response = client.get(url(CH1))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["detail"]

    def test_wrong_token(self, dsp: Dsp, client: httpx.Client) -> None:
        good = token_for(dsp, BOB)["authorization"]
        for header in (good[:-3] + "xyz", "Bearer chfw_su_nonsense", "Basic Ym9iOnNlY3JldA=="):
            response = client.get(url(CH1), headers={"authorization": header})
            assert response.status_code == 401, header

    def test_csp_credential_is_not_an_inventory_token(self, dsp: Dsp, client: httpx.Client) -> None:
        response = client.get(url(CH1), headers={"authorization": f"Bearer {dsp.credential}"})
        assert response.status_code == 401

    def test_replaced_token_is_refused(self, dsp: Dsp, client: httpx.Client) -> None:
        old = token_for(dsp, BOB)
        assert client.get(url(CH1), headers=old).status_code == 200
        new = token_for(dsp, BOB)
        assert client.get(url(CH1), headers=old).status_code == 401
        assert client.get(url(CH1), headers=new).status_code == 200

    def test_reads_are_not_audited_changes(self, dsp: Dsp, client: httpx.Client) -> None:
        client.get(url(CH1), headers=token_for(dsp, BOB))
        with dsp.engine.connect() as conn:
            assert audit.list_recent(conn) == []
