"""recordagent: LLM reasoning over longitudinal patient records.

The public API is re-exported here; see README.md for a tour.
"""

from recordagent.errors import DataLoadError, LoadProblem, RecordAgentError, ToolError, UserError
from recordagent.records import (
    Chunk,
    Chunker,
    Document,
    Event,
    LabValue,
    LoadReport,
    Patient,
    PatientScope,
    RecordStore,
    Tokenizer,
    connect,
    load_bundle,
    patient_summary,
)
from recordagent.resources import example_bundle_path, question_templates_path
from recordagent.settings import (
    ChunkingSettings,
    LoadSettings,
    Settings,
    StoreSettings,
    load_settings,
)

__all__ = [
    "Chunk",
    "Chunker",
    "ChunkingSettings",
    "DataLoadError",
    "Document",
    "Event",
    "LabValue",
    "LoadProblem",
    "LoadReport",
    "LoadSettings",
    "Patient",
    "PatientScope",
    "RecordAgentError",
    "RecordStore",
    "Settings",
    "StoreSettings",
    "Tokenizer",
    "ToolError",
    "UserError",
    "connect",
    "example_bundle_path",
    "load_bundle",
    "load_settings",
    "patient_summary",
    "question_templates_path",
]
