"""The record layer: schema, DuckDB store, bundle loading, chunking and PatientScope (no LLM)."""

from recordagent.records.chunking import Chunker, ChunkSpan, DocumentChunks
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.load_report import LoadProgress, LoadReport
from recordagent.records.schema import Chunk, Document, Event, LabValue, Patient
from recordagent.records.scope import PatientScope
from recordagent.records.store_file import LoadInterrupted, open_for_load
from recordagent.records.summary import patient_summary
from recordagent.records.tokens import Tokenizer

__all__ = [
    "Chunk",
    "ChunkSpan",
    "Chunker",
    "Document",
    "DocumentChunks",
    "Event",
    "LabValue",
    "LoadInterrupted",
    "LoadProgress",
    "LoadReport",
    "Patient",
    "PatientScope",
    "RecordStore",
    "Tokenizer",
    "connect",
    "load_bundle",
    "open_for_load",
    "patient_summary",
]
