"""The ``recordagent`` command line."""
