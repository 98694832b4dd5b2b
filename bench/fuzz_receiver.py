"""Issue 19 item 5: coverage-guided fuzzing of the receiver's check path with atheris (libFuzzer).

Run: .venv/bin/python bench/fuzz_receiver.py [--runs 1000000] [--no-docs]

Every input goes to ``AlertReceiver.check`` (size, safe parse, signature,
DUIS version, schema, shape: no database). The contract: it returns
``Accepted`` or ``Refused`` (400 or 413); anything raised is a crash, saved
under the work folder with the input, and the run goes on, so one bug does
not hide the next.

The first byte of an input picks how the rest is used:

- even: posted as it is. Mutations of a signed alert mostly fail its digest,
  so this mode explores the parser, the Signature profile and KeyInfo;
- odd: first signed with the receiver's trusted key (``sign_document``), so
  mutated content gets past the signature into schema and alert reading.
  Documents the signer refuses (``SigningError``) are skipped.

The corpus is made here: N64s for DUIS 5.1-5.4 and N999s for 5.0 signed with
a development identity (``create_development_identity``, as `chfw keys
create`), a DCC alert of another code, and hostile documents: DOCTYPEs and
entities, comments and CDATA inside signed values (canonical form drops
comments and unwraps CDATA, so their signatures still verify), processing
instructions, an XML declaration, UTF-16. A custom mutator cuts and splices
at tag boundaries with XML tokens half the time (libFuzzer's own mutations,
with the same tokens as a dictionary, the other half), which keeps many
inputs well-formed.

The fuzzer runs in a child process (libFuzzer ends its process when done);
this parent reads libFuzzer's final statistics from the child's stderr and
writes them to the "Receiver fuzzing" section of docs/reliability.md, with
the line and branch coverage of the check path that the final corpus
reaches, measured by coverage.py in a third process.
"""

from __future__ import annotations

import json
import random
import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _fuzzing import (
    command_line,
    measure_coverage,
    print_coverage,
    ratio,
    run_fuzzer,
    run_on,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "reliability.md"
SECTION = "## Receiver fuzzing"
AS_IS, RESIGN = b"\x00", b"\x01"
TOKENS = [
    b"<sr:ResponseID>",
    b"</sr:ResponseID>",
    b"<sr:DCCAlertCode>N64</sr:DCCAlertCode>",
    b"<sr:DCCAlertCode>N999</sr:DCCAlertCode>",
    b"<sr:FirmwareVersion>",
    b"<sr:DeviceID>",
    b'schemaVersion="5.1"',
    b'schemaVersion="5.0"',
    b"<ds:Signature>",
    b"</ds:Signature>",
    b"<ds:X509IssuerName>",
    b"<ds:X509SerialNumber>",
    b"<ds:SignatureValue>",
    b"<ds:DigestValue>",
    b"<ds:Object>",
    b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"',
    b'xmlns="',
    b' Id="x"',
    b' URI=""',
    b"<!--",
    b"-->",
    b"<![CDATA[",
    b"]]>",
    b"<?pi x?>",
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<!DOCTYPE r [<!ENTITY e "x">]>',
    b"&e;",
    b"&amp;",
    b"&#x0;",
    b"&#xFFFF;",
    b"&#1114111;",
    b"\xef\xbb\xbf",
    b"\xc3\xa9",
    b"\xff",
    b"00-1D-A1-00-00-00-00-42",
    b"90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:1",
    b"2026-03-01T09:00:00Z",
    b"02010300",
    b"-1",
    b"9" * 40,
    b"CN=",
    b"OID.2.5.4.3=",
    b"#0c03414243",
]


# --- the corpus ----------------------------------------------------------------------------


def make_identity(folder: Path) -> None:
    """A development signing key and certificate: the receiver trusts it, the seeds use it."""
    from chfw.core.signing import create_development_identity

    key_pem, cert_pem = create_development_identity("fuzzing DSP")
    (folder / "key.pem").write_bytes(key_pem)
    (folder / "cert.pem").write_bytes(cert_pem)


def seed_documents(identity: Path) -> list[bytes]:
    """Signed alerts of every kind the receiver takes, and hostile variations of them."""
    from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
    from chfw.core.duis import SR_NAMESPACE, ResponseId, render_n64, render_n999, response_date_time
    from chfw.core.signing import PemSigner, sign_canonical

    signer = PemSigner.from_pem(
        (identity / "key.pem").read_bytes(), (identity / "cert.pem").read_bytes()
    )
    dcc = UserId.parse("90-B3-D5-1F-30-00-00-02")
    device = DeviceId.parse("00-1D-A1-00-00-00-00-42")
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    documents: list[bytes] = []
    for counter, version in enumerate(("5.1", "5.2", "5.3", "5.4"), start=1):
        for firmware in ("02010300", "FF"):
            documents.append(
                render_n64(
                    response_id=ResponseId(dcc, device, counter),
                    device_id=device,
                    firmware_version=FirmwareVersion.parse(firmware),
                    duis_version=DuisVersion.parse(version),
                    at=at,
                )
            )
    documents.append(
        render_n999(
            response_id=ResponseId(dcc, device, 10),
            device_id=device,
            duis_version=DuisVersion.parse("5.0"),
            at=at,
        )
    )
    documents.append(
        (
            f'<sr:Response xmlns:sr="{SR_NAMESPACE}" schemaVersion="5.1"><sr:Header>'
            f"<sr:ResponseID>{ResponseId(dcc, device, 11)}</sr:ResponseID>"
            f"<sr:ResponseCode>I0</sr:ResponseCode>"
            f"<sr:ResponseDateTime>{response_date_time(at)}</sr:ResponseDateTime></sr:Header>"
            "<sr:Body><sr:DCCAlertMessage><sr:DCCAlertCode>AD1</sr:DCCAlertCode><sr:DCCAlert>"
            "<sr:PowerOutageEvent><sr:CommsHubDeviceID>00-1D-A1-00-00-00-00-42"
            "</sr:CommsHubDeviceID></sr:PowerOutageEvent></sr:DCCAlert></sr:DCCAlertMessage>"
            "</sr:Body></sr:Response>"
        ).encode()
    )
    signed = [sign_canonical(document, signer) for document in documents]
    n64 = signed[0]
    hostile = [
        # Canonical form drops comments and unwraps CDATA: these still verify.
        n64.replace(b"</sr:ResponseID>", b"<!-- 99 --></sr:ResponseID>", 1),
        n64.replace(b"<sr:ResponseID>", b"<sr:ResponseID><!---->", 1),
        n64.replace(b"02010300</", b"0201<!-- x -->0300</", 1),
        re.sub(rb"<sr:DeviceID>([^<]*)<", rb"<sr:DeviceID><![CDATA[\1]]><", n64, count=1),
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + n64 + b"\n<!-- after -->\n<?pi x?>",
        n64.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue><!-- c -->", 1),
        n64.replace(b"<ds:X509IssuerName>", b"<ds:X509IssuerName><!-- c -->", 1),
        (b'<?xml version="1.0" encoding="UTF-16"?>' + n64).decode().encode("utf-16"),
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;</r>',
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + n64.replace(b"02010300</", b"&x;</", 1),
        b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd">' + n64,
        b"<a>" * 300 + b"</a>" * 300,
    ]
    return [AS_IS + document for document in signed + hostile] + [
        RESIGN + document for document in documents
    ]


# --- the child: libFuzzer's target --------------------------------------------------------


def receiver_under_test(identity: Path) -> Any:
    """The receiver's check path over a trust store of the identity; the engine is never used."""
    from sqlalchemy import create_engine

    from chfw.core.signing import TrustStore
    from chfw.supplier.pipeline import AlertReceiver, ReceiverConfig

    trust = TrustStore.from_files(identity / "cert.pem")
    return AlertReceiver(ReceiverConfig(trust=trust), create_engine("sqlite://"))


def splice(data: bytes, max_size: int, seed: int) -> bytes:
    """Cut, copy or insert XML tokens at tag boundaries, keeping the first (mode) byte."""
    rng = random.Random(seed)
    mode, document = data[:1] or AS_IS, data[1:]
    bounds = [0, *(m.end() for m in re.finditer(rb">", document)), len(document)]
    a, b = sorted(rng.sample(bounds, 2)) if len(bounds) > 2 else (0, len(document))
    choice = rng.randrange(4)
    if choice == 0:  # insert a token at a boundary
        document = document[:a] + rng.choice(TOKENS) + document[a:]
    elif choice == 1:  # replace a value (the text after a tag) by a token
        end = document.find(b"<", a)
        document = document[:a] + rng.choice(TOKENS) + document[end if end >= 0 else a :]
    elif choice == 2:  # drop everything between two boundaries
        document = document[:a] + document[b:]
    else:  # repeat a stretch of elements
        document = document[:b] + document[a:b] + document[b:]
    return (mode + document)[:max_size]


def fuzz_child(work: Path, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["chfw"]):
        from chfw.core.signing import PemSigner, sign_document
        from chfw.exceptions import ChfwError
        from chfw.supplier.pipeline import Accepted, Refused

    identity = work / "identity"
    receiver = receiver_under_test(identity)
    signer = PemSigner.from_pem(
        (identity / "key.pem").read_bytes(), (identity / "cert.pem").read_bytes()
    )
    seen: set[str] = set()

    def target(data: bytes) -> None:
        body = data[1:]
        if data[:1] and data[0] & 1:
            try:
                body = sign_document(body, signer)
            except ChfwError:
                return
            except Exception as error:  # the DSP's signer, not the receiver: noted apart
                _crash(data, error, "sign_document")
                return
        try:
            checked = receiver.check(body, "127.0.0.1")
        except Exception as error:  # anything raised is the finding
            _crash(data, error, "check")
            return
        if isinstance(checked, Refused) and checked.status not in (400, 413):
            _crash(data, ValueError(f"refused with {checked.status}"), "check")
        elif not isinstance(checked, Accepted | Refused):
            _crash(data, TypeError(f"check returned {type(checked).__name__}"), "check")

    def _crash(data: bytes, error: BaseException, where: str) -> None:
        frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        at = f" at {frame.filename}:{frame.lineno}" if frame else ""
        signature = f"{where}: {type(error).__name__}{at}"
        with (work / "crashes.jsonl").open("a") as out:
            line = {"error": signature, "message": str(error)[:300], "input": data.hex()}
            out.write(json.dumps(line) + "\n")
        if signature not in seen:
            seen.add(signature)
            print(f"CRASH {signature}: {str(error)[:200]}", file=sys.stderr, flush=True)

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        if seed % 2:
            return bytes(atheris.Mutate(data, max_size))
        return splice(data, max_size, seed)

    atheris.Setup([sys.argv[0], *libfuzzer_args], target, custom_mutator=mutate)
    atheris.Fuzz()


def replay_child(work: Path, folders: list[Path]) -> None:
    """Run the final corpus under coverage.py; print line and branch coverage of the check path."""
    import coverage

    src = ROOT / "src" / "chfw"
    measured = [
        src / "receiver" / "pipeline.py",
        src / "receiver" / "facts.py",
        src / "receiver" / "validation.py",
        src / "signing" / "verify.py",
        src / "signing" / "names.py",
        src / "signing" / "canon.py",
        src / "xmlsafe.py",
    ]
    cov = coverage.Coverage(branch=True, include=[str(p) for p in measured], config_file=False)
    cov.start()
    from chfw.core.signing import PemSigner, sign_document
    from chfw.exceptions import ChfwError

    identity = work / "identity"
    receiver = receiver_under_test(identity)
    signer = PemSigner.from_pem(
        (identity / "key.pem").read_bytes(), (identity / "cert.pem").read_bytes()
    )
    for folder in folders:
        for path in sorted(folder.iterdir()):
            data = path.read_bytes()
            body = data[1:]
            try:
                if data[:1] and data[0] & 1:
                    body = sign_document(body, signer)
                receiver.check(body)
            except (ChfwError, ValueError):  # the crashes are counted by the fuzzer itself
                continue
    cov.stop()
    print_coverage(cov, work / "coverage.json")


# --- the parent: run, read, report ---------------------------------------------------------


def run(runs: int, max_len: int, work: Path) -> dict[str, Any]:
    identity, corpus, seeds = work / "identity", work / "corpus", work / "seeds"
    for folder in (identity, corpus, seeds):
        folder.mkdir()
    make_identity(identity)
    seed_list = seed_documents(identity)
    for index, seed in enumerate(seed_list):
        (seeds / f"seed-{index:03d}").write_bytes(seed)
    dictionary = work / "xml.dict"
    dictionary.write_text("".join(f'"{_escaped(token)}"\n' for token in TOKENS))
    fuzzed = run_fuzzer(
        __file__,
        work,
        runs=runs,
        max_len=max_len,
        folders=[corpus, seeds],
        options=[f"-dict={dictionary}"],
    )
    covered = measure_coverage(__file__, work, corpus, seeds)
    return {
        **fuzzed.figures(),
        "lines": covered["lines"],
        "branches": covered["branches"],
        "seeds": len(seed_list),
        "max_len": max_len,
        **run_on(),
    }


def section(result: dict[str, Any]) -> str:
    kinds = ", ".join(map(str, result["crash_kinds"] or ["none"]))
    return f"""{SECTION}

`bench/fuzz_receiver.py` runs atheris (libFuzzer, coverage-guided) against the receiver's check
path, `AlertReceiver.check` (safe parse, signature and KeyInfo, DUIS version, schema, alert
shape). The contract: every input is accepted or refused (400, 413); anything raised is a crash.
Seeds: N64s (DUIS 5.1-5.4) and an N999 (5.0) signed with a development key the receiver trusts,
an alert of another code, and hostile documents (DOCTYPEs and entities, comments and CDATA inside
signed values, processing instructions, UTF-16). Half the inputs are signed again before the
check, so mutated content reaches the schema and the alert reader; a custom mutator splices XML
tokens at tag boundaries.

| figure | value |
|---|---|
| inputs run | {result["inputs"]:,} |
| wall time | {result["seconds"]} s |
| inputs per second | {result["inputs_per_second"]:,} |
| crashes (anything raised, or a refusal other than 400/413) | **{result["crashes"]}** ({kinds}) |
| edges covered (libFuzzer `cov`, chfw modules instrumented) | {result["edges_covered"]} |
| coverage features (`ft`) | {result["features"]} |
| corpus at the end | {result["corpus_inputs"]} inputs, {result["corpus_size"]} |
| check-path lines run by the corpus (coverage.py) | {ratio(result["lines"])} |
| check-path branches taken by the corpus | {ratio(result["branches"])} |
| seeds | {result["seeds"]} |
| longest input | {result["max_len"]:,} bytes |
| run on | {result["date"]}, Python {result["python"]}, {result["machine"]} |

Reproduce: `.venv/bin/python bench/fuzz_receiver.py --runs 1000000` (writes this section).
"""


def _escaped(token: bytes) -> str:
    """A libFuzzer dictionary entry's text: every byte as a \\xNN escape."""
    return "".join(f"\\x{b:02x}" for b in token)


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--replay":
        replay_child(Path(sys.argv[2]), [Path(folder) for folder in sys.argv[3:]])
        return
    command_line(
        (__doc__ or "").split("\n")[0],
        max_len=8192,
        run=run,
        child=fuzz_child,
        section=section,
        docs=DOCS,
        heading=SECTION,
        work_prefix="chfw-fuzz-receiver-",
        kept=ROOT / "fuzz-receiver-crashes.jsonl",
    )


if __name__ == "__main__":
    main()
