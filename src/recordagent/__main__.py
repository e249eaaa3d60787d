"""``python -m recordagent`` runs the command line."""

from recordagent.cli.main import run

if __name__ == "__main__":  # worker processes re-import this module; they must not rerun it
    run()
