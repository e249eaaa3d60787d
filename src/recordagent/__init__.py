"""recordagent: LLM reasoning over longitudinal patient records.

The public API is re-exported here; see README.md for a tour.
"""

from recordagent.errors import DataLoadError, LoadProblem, RecordAgentError, ToolError, UserError
from recordagent.evaluation import (
    RunLog,
    Suite,
    evaluate,
    evaluate_async,
    load_suite,
    results,
    write_results,
)
from recordagent.extraction import extract, extract_async
from recordagent.notebook import Question, answer_many, ask
from recordagent.questions import AnswerSpec, EvalItem, read_items, write_items
from recordagent.records import (
    Chunk,
    Chunker,
    Document,
    Event,
    LabValue,
    LoadInterrupted,
    LoadProgress,
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
    configured_model,
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
    "LoadProgress",
    "LoadProblem",
    "LoadReport",
    "LoadSettings",
    "Patient",
    "PatientScope",
    "Question",
    "RecordAgentError",
    "RecordStore",
    "RunLog",
    "Runner",
    "Settings",
    "StoreSettings",
    "Suite",
    "Tokenizer",
    "ToolError",
    "TraceEvent",
    "UserError",
    "answer_many",
    "ask",
    "build_runner",
    "configured_model",
    "connect",
    "evaluate",
    "evaluate_async",
    "extract",
    "extract_async",
    "example_bundle_path",
    "load_bundle",
    "open_for_load",
    "load_settings",
    "load_suite",
    "patient_summary",
    "question_templates_path",
    "read_items",
    "results",
    "stream_run",
    "write_items",
    "write_results",
]
