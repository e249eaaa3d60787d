"""Runners: four ways to answer a question about one patient, behind one protocol.

``agent`` (the LangGraph graph), ``single_pass_rag``, ``iterative_rag`` and ``full_context``
each take an EvalItem, the patient's PatientScope and a ChatModel and return an Answer.

Imports go one way: the shared machinery (``base``, ``loggable``, ``trace``, ``timing``,
``evidence``, ``answering``, ``passages``, ``retrieval``, ``common``) at the bottom, the
runners (``single_pass``, ``iterative``, ``full_context``, the ``agent`` package) above it,
``dry_run``, ``models`` (the model a run uses when none is named) and the ``registry`` on
top.
"""

from recordagent.runners.agent import AgentRunner
from recordagent.runners.base import (
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
from recordagent.runners.models import configured_model
from recordagent.runners.passages import Passage, lab_passages
from recordagent.runners.registry import RUNNER_NAMES, RUNNERS, build_runner, stream_run
from recordagent.runners.retrieval import PatientRetriever
from recordagent.runners.single_pass import SinglePassRag
from recordagent.runners.timing import StepTime, time_by_step

__all__ = [
    "RUNNERS",
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
    "StepTime",
    "TraceEvent",
    "build_runner",
    "configured_model",
    "lab_passages",
    "pack_record",
    "stream_run",
    "time_by_step",
]
