"""The per-patient interactive session behind ``recordagent chat``.

:class:`ChatSession` holds one patient's conversation and answers questions with a runner;
:func:`run_command` serves the slash commands (no model needed); :func:`run_loop` is the
terminal prompt loop around both. Nothing here runs at import time.
"""

from recordagent.chat.citations import CitedSource, cited_passage, resolve_citations
from recordagent.chat.commands import COMMANDS, CommandOutcome, run_command
from recordagent.chat.export import session_markdown
from recordagent.chat.session import ChatSession, Turn

__all__ = [
    "COMMANDS",
    "ChatSession",
    "CitedSource",
    "CommandOutcome",
    "Turn",
    "cited_passage",
    "resolve_citations",
    "run_command",
    "session_markdown",
]
