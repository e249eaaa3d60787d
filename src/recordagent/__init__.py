"""recordagent: LLM reasoning over longitudinal patient records.

The public API is re-exported here; see README.md for a tour.
"""

from recordagent.errors import DataLoadError, LoadProblem, RecordAgentError, ToolError, UserError
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.records import (
    Chunk,
    Chunker,
    Document,
    Event,
    LabValue,
    LoadInterrupted,
    LoadReport,
    Patient,
    PatientScope,
    RecordStore,
    Tokenizer,
    connect,
    load_bundle,
    open_for_load,
    patient_summary,
)
from recordagent.resources import example_bundle_path, question_templates_path
from recordagent.runners import (
    RUNNER_NAMES,
    Answer,
    AnswerStatus,
    Runner,
    TraceEvent,
    build_runner,
    stream_run,
)
from recordagent.settings import (
    ChunkingSettings,
    LoadSettings,
    Settings,
    StoreSettings,
    load_settings,
)

__all__ = [
    "RUNNER_NAMES",
    "Answer",
    "AnswerSpec",
    "AnswerStatus",
    "Chunk",
    "Chunker",
    "ChunkingSettings",
    "DataLoadError",
    "Document",
    "EvalItem",
    "Event",
    "LabValue",
    "LoadInterrupted",
    "LoadProblem",
    "LoadReport",
    "LoadSettings",
    "Patient",
    "PatientScope",
    "RecordAgentError",
    "RecordStore",
    "Runner",
    "Settings",
    "StoreSettings",
    "Tokenizer",
    "ToolError",
    "TraceEvent",
    "UserError",
    "build_runner",
    "connect",
    "example_bundle_path",
    "load_bundle",
    "open_for_load",
    "load_settings",
    "patient_summary",
    "question_templates_path",
    "stream_run",
]
