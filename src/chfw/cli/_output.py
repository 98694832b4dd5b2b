"""How commands print tables: whole when stdout is not a terminal (a pipe, a file, a script).

rich sizes a table to the terminal, and to 80 columns when there is none, cutting cells
short ("90-B3-D5-1F-3…"): fine for a person at a narrow terminal, wrong for a script that
reads the output. Off a terminal, :func:`console` is as wide as any row needs, so nothing
is cut or folded. Every command that prints a table also has ``--json``.
"""

from __future__ import annotations

import sys

from rich.console import Console

#: Columns offered to a table when stdout is not a terminal: more than any row needs.
UNCUT_WIDTH = 100_000


def on_terminal() -> bool:
    return sys.stdout.isatty()


def console() -> Console:
    """A console for stdout: the terminal's width on a terminal, else wide enough for all."""
    if on_terminal():
        return Console()
    return Console(width=UNCUT_WIDTH, soft_wrap=True)
