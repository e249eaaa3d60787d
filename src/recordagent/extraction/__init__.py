"""Cohort-scale extraction: every patient × question, answered into a results table.

:func:`extract` answers a template folder's questions (or questions given) for every selected
patient with one runner, into an append-only run log and a Parquet table with cited excerpts;
resumable, with a plan of tokens and cost before any model call, a budget, and an engine that
runs in this process or shards the patients over a Ray cluster (``engine="ray"``, the
``recordagent[ray]`` extra). See docs/extraction.md.
"""

from recordagent.extraction.plan import Estimate, ExtractionPlan
from recordagent.extraction.run import (
    Extraction,
    ExtractionProgress,
    ExtractionSummary,
    extract,
    extract_async,
)
from recordagent.extraction.table import EXTRACTION_COLUMNS

__all__ = [
    "EXTRACTION_COLUMNS",
    "Estimate",
    "Extraction",
    "ExtractionPlan",
    "ExtractionProgress",
    "ExtractionSummary",
    "extract",
    "extract_async",
]
