"""Run the CLI: `python -m axq ...`."""

from axq.cli import entry_point

entry_point()
