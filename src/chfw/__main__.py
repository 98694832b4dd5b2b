"""`python -m chfw` runs the CLI (used by the demo to start its child services)."""

from chfw.cli import main

main()
