"""What intake tests post (a valid CS06 response for CH1) and what they count afterwards."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_response
from tests.small_dsp import CH1

SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
TABLES = ("intake_rejections", "firmware_history", "outbox")
NOTHING = dict.fromkeys(TABLES, 0)


def valid_message(counter: int = 7) -> bytes:
    """A successful CS06 response from CH1 (supplied by ALICE and BOB in tests.dsp)."""
    return encode_response(
        device_id=CH1,
        recipient=SUPPLIER,
        counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=FirmwareVersion.parse("02010300"),
    )


def stored(engine: Engine) -> dict[str, int]:
    """Rows in every table a submission can write to."""
    with engine.connect() as conn:
        return {
            table: int(
                conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
            )
            for table in TABLES
        }


def post_message(
    base: str, credential: str, counter: int = 7, timeout: float = 10
) -> httpx.Response:
    """POST :func:`valid_message` to the intake at ``base`` as raw bytes."""
    return httpx.post(
        f"{base}/csp/v1/messages",
        content=valid_message(counter),
        headers={
            "content-type": "application/octet-stream",
            "authorization": f"Bearer {credential}",
        },
        timeout=timeout,
    )
