"""``python -m corral``: the command line."""

from corral.cli import run

run()
