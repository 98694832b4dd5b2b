"""Issue 7: coverage-guided fuzzing of the GBCS decoder with atheris (libFuzzer).

Run: .venv/bin/python bench/fuzz_gbcs.py [--runs 1000000] [--no-docs]

Every input is handed to ``decode_outcome`` and ``decode_message`` twice: as
bytes (the binary path) and as Latin-1 text (the hex-text path). Anything but
a :class:`~chfw.exceptions.GbcsDecodeError` counts as a crash; its input is
saved under the work folder and the run goes on, so one bug does not hide
the next. The corpus starts from messages chfw's own encoder writes and, when
../shared/dcc-reference is present, DCC's RTDS CS06 vectors.

The fuzzer runs in a child process (libFuzzer ends its process when done);
this parent reads libFuzzer's final statistics from the child's stderr and
writes them to the "Fuzzing" section of docs/reliability.md, with the line
and branch coverage of the decoding modules (chfw.core.gbcs less the encoder)
that the final corpus reaches, measured by coverage.py in a third process.
"""

from __future__ import annotations

import contextlib
import json
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
RTDS = ROOT.parent / "shared" / "dcc-reference" / "gbcs"
DOCS = ROOT / "docs" / "reliability.md"
SECTION = "## Fuzzing"


def seed_messages() -> list[bytes]:
    """Valid messages of every CS06 shape, from chfw's encoder, and the RTDS vectors' hex text."""
    from datetime import timedelta

    from cryptography.hazmat.primitives.asymmetric import ec

    from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
    from chfw.core.gbcs import encode_accepted, encode_alert, encode_response

    device = DeviceId.parse("00-DB-12-34-56-78-90-A0")
    supplier = Eui64.parse("90-B3-D5-1F-30-01-00-00")
    at = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    seeds: list[bytes] = []
    for signing_key in (None, key):
        common = {"device_id": device, "recipient": supplier, "signing_key": signing_key}
        seeds.append(encode_accepted(counter=1001, **common))
        seeds.append(encode_accepted(counter=1002, date_time=at, **common))
        for result in ActivationResult:
            if result is ActivationResult.ACCEPTED:
                continue
            for version in ("0123ABCE", "01", "0102030405060708"):
                seeds.append(
                    encode_response(
                        counter=1000,
                        result=result,
                        firmware_version=FirmwareVersion.parse(version),
                        date_time=at - timedelta(days=1),
                        **common,
                    )
                )
            seeds.append(
                encode_alert(
                    message_counter=2000,
                    originator_counter=(1 << 64) - 1,
                    result=result,
                    firmware_version=FirmwareVersion.parse("0123ABCF"),
                    executed_at=at,
                    **common,
                )
            )
    seeds.extend(message.hex().upper().encode() for message in seeds[:4])
    if RTDS.is_dir():
        seeds.extend(path.read_bytes() for path in sorted(RTDS.glob("*.HEX")))
    return seeds


# --- the child: libFuzzer's target --------------------------------------------------------


def fuzz_child(crash_dir: Path, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["chfw"]):
        from chfw.core.gbcs import decode_message, decode_outcome
        from chfw.exceptions import GbcsDecodeError

    seen: set[str] = set()

    def target(data: bytes) -> None:
        for decode in (decode_outcome, decode_message):
            for payload in (data, data.decode("latin-1")):
                try:
                    decode(payload)
                except GbcsDecodeError as error:
                    if not 0 <= error.offset <= max(len(data), 1):
                        _crash(data, f"offset {error.offset} outside the input", decode.__name__)
                except Exception as error:  # anything else is the finding
                    where = traceback.extract_tb(error.__traceback__)[-1]
                    signature = f"{type(error).__name__} at {where.filename}:{where.lineno}"
                    _crash(data, signature, decode.__name__, first=signature not in seen)
                    seen.add(signature)

    def _crash(data: bytes, what: str, decoder: str, first: bool = True) -> None:
        with (crash_dir / "crashes.jsonl").open("a") as out:
            out.write(json.dumps({"decoder": decoder, "error": what, "input": data.hex()}) + "\n")
        if first:
            print(f"CRASH {decoder}: {what} on input {data.hex()}", file=sys.stderr, flush=True)

    atheris.Setup([sys.argv[0], *libfuzzer_args], target)
    atheris.Fuzz()


def replay_child(folders: list[Path]) -> None:
    """Run the final corpus under coverage.py; print line and branch coverage of chfw.core.gbcs."""
    import coverage

    package = ROOT / "src" / "chfw" / "gbcs"
    cov = coverage.Coverage(branch=True, include=[f"{package}/*"], config_file=False)
    cov.start()
    from chfw.core.gbcs import decode_message, decode_outcome
    from chfw.exceptions import GbcsDecodeError

    for folder in folders:
        for path in sorted(folder.iterdir()):
            data = path.read_bytes()
            for decode in (decode_outcome, decode_message):
                for payload in (data, data.decode("latin-1")):
                    with contextlib.suppress(GbcsDecodeError):
                        decode(payload)
    cov.stop()
    not_decoding = [f"{package}/{name}" for name in ("encode.py", "signature.py", "__init__.py")]
    print_coverage(cov, Path(folders[0]).parent / "coverage.json", omit=not_decoding)


# --- the parent: run, read, report ---------------------------------------------------------


def run(runs: int, max_len: int, work: Path) -> dict[str, Any]:
    corpus = work / "corpus"
    seeds = work / "seeds"
    corpus.mkdir()
    seeds.mkdir()
    for index, seed in enumerate(seed_messages()):
        (seeds / f"seed-{index:03d}").write_bytes(seed)
    fuzzed = run_fuzzer(__file__, work, runs=runs, max_len=max_len, folders=[corpus, seeds])
    covered = measure_coverage(__file__, corpus, seeds)
    return {
        "inputs": fuzzed.inputs,
        "decoder_calls": fuzzed.inputs * 4,
        **fuzzed.figures(),  # its "inputs" again: the key keeps its first place
        "decoder_lines": covered["lines"],
        "decoder_branches": covered["branches"],
        "seeds": len(list(seeds.iterdir())),
        "rtds_vectors": RTDS.is_dir(),
        "max_len": max_len,
        **run_on(),
    }


def section(result: dict[str, Any]) -> str:
    kinds = ", ".join(map(str, result["crash_kinds"] or ["none"]))
    return f"""{SECTION}

`bench/fuzz_gbcs.py` runs atheris (libFuzzer, coverage-guided) against
`chfw.core.gbcs.decode_outcome`
and `decode_message`, each input given as bytes and as hex text. The contract: every input either
decodes or raises `GbcsDecodeError` (with an offset inside the input); anything else is a crash.
Seeds: messages chfw's encoder writes (every result, signed and unsigned, as bytes and hex) and
{"DCC's RTDS CS06 vectors" if result["rtds_vectors"] else "(RTDS vectors absent in this run)"}.
Hypothesis runs the same contract on every `make test`
(tests/core/gbcs/test_properties.py, and random
bodies at the HTTP intake in tests/dsp/intake/test_hostile.py).

| figure | value |
|---|---|
| inputs run | {result["inputs"]:,} ({result["decoder_calls"]:,} decoder calls) |
| wall time | {result["seconds"]} s |
| inputs per second | {result["inputs_per_second"]:,} |
| crashes (anything but `GbcsDecodeError`) | **{result["crashes"]}** ({kinds}) |
| edges covered (libFuzzer `cov`, chfw modules instrumented) | {result["edges_covered"]} |
| coverage features (`ft`) | {result["features"]} |
| corpus at the end | {result["corpus_inputs"]} inputs, {result["corpus_size"]} |
| decoder lines run by the corpus (coverage.py) | {ratio(result["decoder_lines"])} |
| decoder branches taken by the corpus | {ratio(result["decoder_branches"])} |
| seeds | {result["seeds"]} |
| longest input | {result["max_len"]} bytes |
| run on | {result["date"]}, Python {result["python"]}, {result["machine"]} |

Reproduce: `.venv/bin/python bench/fuzz_gbcs.py --runs 1000000` (writes this section).
"""


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--replay":
        replay_child([Path(folder) for folder in sys.argv[2:]])
        return
    command_line(
        __doc__.split("\n")[0],
        max_len=512,
        run=run,
        child=fuzz_child,
        section=section,
        docs=DOCS,
        heading=SECTION,
        work_prefix="chfw-fuzz-",
        kept=ROOT / "fuzz-crashes.jsonl",
    )


if __name__ == "__main__":
    main()
