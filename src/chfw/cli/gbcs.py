"""``chfw gbcs``: inspect GBCS CS06 answers from the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from chfw.core.domain import ActivationOutcome
from chfw.core.gbcs import GeneralSigningMessage, outcome_from_message, verify_device_signature
from chfw.core.gbcs.decode import CS06_MESSAGE_CODES
from chfw.core.gbcs.hextext import message_bytes
from chfw.core.gbcs.message import parse_message
from chfw.exceptions import DeviceSignatureError, GbcsDecodeError

app = typer.Typer(
    help="Inspect GBCS messages (CS06 Activate Firmware responses and alerts).",
    no_args_is_help=True,
)

EXIT_BAD_INPUT = 2
EXIT_SIGNATURE_INVALID = 1


@app.callback()
def gbcs() -> None:
    """Inspect GBCS messages (CS06 Activate Firmware responses and alerts)."""
    # A callback keeps `decode` a subcommand even while it is the group's only command.


@app.command()
def decode(
    message: Annotated[
        str,
        typer.Argument(
            metavar="HEX",
            help="The message as hex (whitespace and a leading 0x allowed), or - to read stdin.",
        ),
    ],
    verify_with: Annotated[
        Path | None,
        typer.Option(
            "--verify-with",
            metavar="CERT.pem",
            help="The hub's device signing certificate (or public key), PEM: check the signature.",
        ),
    ] = None,
) -> None:
    """Decode a CS06 response or future-dated activation alert; print one JSON object.

    Keys: device_id ("00-DB-12-34-56-78-90-A0"), cra ("response" or "alert"),
    originator_counter (the CS06 command's counter; for an alert the one in its
    content), message_counter (the counter of this message), message_code (four
    upper-case hex digits after 0x: "0x0012" response, "0x00CA" alert), outcome
    ("success", "no_image_held", "hash_mismatch", "activation_failure",
    "accepted"), firmware_version (upper-case hex, or null), alert_code
    ("0x8F66"/"0x8F67", or null), recipient, date_time (the header's, ISO 8601
    UTC, or null), occurred_at (an alert's executionDateTime, else date_time),
    signature ("absent", "present", or "verified" with --verify-with).

    Exit 2 when the input cannot be decoded or the certificate cannot be read,
    1 when --verify-with is given and the signature is absent or wrong.
    """
    text = _read_stdin() if message == "-" else message
    public_key = _load_key(verify_with) if verify_with is not None else None
    try:
        parsed = parse_message(message_bytes(text), allowed=CS06_MESSAGE_CODES)
        outcome = outcome_from_message(parsed)
    except GbcsDecodeError as error:
        raise _fail(str(error), EXIT_BAD_INPUT) from None
    signature = "absent" if parsed.signature is None else "present"
    if public_key is not None:
        try:
            verify_device_signature(parsed, public_key)
        except DeviceSignatureError as error:
            raise _fail(str(error), EXIT_SIGNATURE_INVALID) from None
        signature = "verified"
    typer.echo(json.dumps(_as_json(parsed, outcome, signature)))


def _as_json(
    message: GeneralSigningMessage, outcome: ActivationOutcome, signature: str
) -> dict[str, object]:
    version = outcome.firmware_version
    return {
        "device_id": str(outcome.device_id),
        "cra": outcome.source.value,
        "originator_counter": outcome.originator_counter,
        "message_counter": outcome.message_counter,
        "message_code": f"0x{outcome.message_code:04X}",
        "outcome": outcome.result.value,
        "firmware_version": None if version is None else version.hex,
        "alert_code": None if outcome.alert_code is None else f"0x{outcome.alert_code:04X}",
        "recipient": str(outcome.recipient),
        "date_time": _iso(message.date_time),
        "occurred_at": _iso(outcome.occurred_at),
        "signature": signature,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _read_stdin() -> str:
    # Bytes, then lenient text: a stray non-UTF-8 byte becomes U+FFFD, which the hex
    # reader reports with its offset instead of a UnicodeDecodeError traceback.
    return typer.get_binary_stream("stdin").read().decode("utf-8", errors="replace")


def _load_key(path: Path) -> ec.EllipticCurvePublicKey | x509.Certificate:
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise _fail(f"cannot read {path}: {error.strerror}", EXIT_BAD_INPUT) from None
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        pass
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise _fail(
            f"{path} holds neither a PEM certificate nor a PEM public key", EXIT_BAD_INPUT
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _fail(f"{path} holds a {type(key).__name__}, not an EC P-256 key", EXIT_BAD_INPUT)
    return key


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
