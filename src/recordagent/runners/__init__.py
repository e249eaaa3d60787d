"""Runners: four ways to answer a question about one patient, behind one protocol.

``agent`` (the LangGraph graph), ``single_pass_rag``, ``iterative_rag`` and ``full_context``
each take an EvalItem, the patient's PatientScope and a ChatModel and return an Answer.
"""

from typing import TYPE_CHECKING, Any

from recordagent.runners._base import (
    Answer,
    AnswerStatus,
    AnswerUsage,
    Citation,
    EventSink,
    Runner,
    TraceEvent,
)
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.full_context import FullContext, PackedRecord, pack_record
from recordagent.runners.iterative import IterativeRag
from recordagent.runners.passages import Passage, lab_passages
from recordagent.runners.registry import RUNNER_NAMES, build_runner, stream_run
from recordagent.runners.retrieval import PatientRetriever
from recordagent.runners.single_pass import SinglePassRag

if TYPE_CHECKING:
    from recordagent.runners.agent import AgentRunner

__all__ = [
    "RUNNER_NAMES",
    "AgentRunner",
    "Answer",
    "AnswerStatus",
    "AnswerUsage",
    "Citation",
    "EventSink",
    "EvidenceBook",
    "FullContext",
    "IterativeRag",
    "PackedRecord",
    "Passage",
    "PatientRetriever",
    "Runner",
    "SinglePassRag",
    "TraceEvent",
    "build_runner",
    "lab_passages",
    "pack_record",
    "stream_run",
]


def __getattr__(name: str) -> Any:
    # The agent runner imports the agent graph, which imports this package's base types:
    # loading it on first use keeps `import recordagent.agent` free of an import cycle.
    if name == "AgentRunner":
        from recordagent.runners.agent import AgentRunner

        return AgentRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
