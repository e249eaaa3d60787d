"""``python -m recordagent`` runs the command line."""

from recordagent.cli.main import run

run()
