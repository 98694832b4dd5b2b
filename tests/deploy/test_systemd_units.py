"""deploy/systemd/: the unit files are valid for systemd and run chfw commands that exist.

`systemd-analyze verify` checks every key (an unknown or misspelt one is reported); the chfw
command line of each ExecStart is run with --help, so a renamed option fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("chfw-*"))
CHFW = "/opt/chfw/bin/chfw"


def test_the_units_are_there() -> None:
    names = {unit.name for unit in UNITS}
    assert names == {
        "chfw-serve.service",
        "chfw-worker@.service",
        "chfw-archive.service",
        "chfw-archive.timer",
    }


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_every_key(tmp_path: Path) -> None:
    for unit in UNITS:
        name = unit.name.replace("@.service", "@1.service")  # an instance of the template
        (tmp_path / name).write_text(unit.read_text().replace(CHFW, "/bin/true"))
    files = sorted(str(path) for path in tmp_path.iterdir())
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [line for line in checked.stderr.splitlines() if str(tmp_path) in line]
    assert checked.returncode == 0, checked.stderr
    assert problems == []


@pytest.mark.parametrize("unit", [u for u in UNITS if u.suffix == ".service"], ids=str)
def test_exec_start_runs_a_chfw_command_that_exists(unit: Path) -> None:
    (line,) = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
    command = re.search(re.escape(CHFW) + r" ([a-z ]+?)(?: --|'|$)", line)
    assert command is not None, line
    words = command.group(1).split()
    helped = subprocess.run(
        [sys.executable, "-m", "chfw", *words, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    for option in re.findall(r"(--[a-z-]+)", line.split(CHFW, 1)[1]):
        assert option in helped.stdout, (unit.name, option)
