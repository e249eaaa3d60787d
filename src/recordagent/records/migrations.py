"""Versioned, append-only schema migrations of the record store.

Never edit a released migration: add a new one. Each migration runs in its own transaction
and records itself in ``schema_migrations``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    statements: tuple[str, ...]


_V1 = (
    """
    CREATE TABLE sources (
        source_id INTEGER PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        location VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        package_version VARCHAR NOT NULL,
        tokenizer VARCHAR NOT NULL,
        chunk_max_tokens INTEGER NOT NULL,
        n_patients BIGINT NOT NULL,
        n_documents BIGINT NOT NULL,
        n_chunks BIGINT NOT NULL,
        n_labs BIGINT NOT NULL,
        n_events BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE patients (
        patient_id VARCHAR PRIMARY KEY,
        sex VARCHAR,
        birth_date DATE,
        death_date DATE,
        source_id INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE documents (
        document_id VARCHAR PRIMARY KEY,
        patient_id VARCHAR NOT NULL,
        date TIMESTAMP NOT NULL,
        type VARCHAR NOT NULL,
        title VARCHAR,
        text VARCHAR NOT NULL,
        source_id INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE chunks (
        chunk_id VARCHAR NOT NULL,
        document_id VARCHAR NOT NULL,
        patient_id VARCHAR NOT NULL,
        position INTEGER NOT NULL,
        section VARCHAR,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        token_count INTEGER NOT NULL,
        source_id INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE labs (
        lab_id VARCHAR NOT NULL,
        patient_id VARCHAR NOT NULL,
        time TIMESTAMP NOT NULL,
        analyte_code VARCHAR,
        analyte_name VARCHAR NOT NULL,
        value_num DOUBLE,
        value_text VARCHAR,
        unit VARCHAR,
        ref_low DOUBLE,
        ref_high DOUBLE,
        flag VARCHAR,
        source_id INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE events (
        event_id VARCHAR NOT NULL,
        patient_id VARCHAR NOT NULL,
        start_time TIMESTAMP NOT NULL,
        end_time TIMESTAMP,
        kind VARCHAR NOT NULL,
        code VARCHAR,
        label VARCHAR NOT NULL,
        detail VARCHAR,
        source_id INTEGER NOT NULL
    )
    """,
)

_V2 = (
    """
    CREATE TABLE chunk_terms (
        patient_id VARCHAR NOT NULL,
        chunk_id VARCHAR NOT NULL,
        term VARCHAR NOT NULL,
        tf INTEGER NOT NULL,
        n_terms INTEGER NOT NULL,
        source_id INTEGER NOT NULL
    )
    """,
    "CREATE TABLE search_index (source_id INTEGER PRIMARY KEY, vocabulary VARCHAR NOT NULL)",
)

# Lab details some sources report (MIMIC-IV: specimen fluid, lab category, order priority,
# comments). Added columns go after source_id; every insert names its columns.
_V3 = tuple(
    f"ALTER TABLE labs ADD COLUMN {column} VARCHAR"
    for column in ("fluid", "category", "priority", "comment")
)

# The source system's own code of an analyte whose analyte_code is a standard one (a MIMIC-IV
# itemid mapped to LOINC, an OMOP measurement_source_value, a FHIR coding beside LOINC), so that
# the lab tool also finds values by the code the hospital uses.
_V4 = ("ALTER TABLE labs ADD COLUMN local_code VARCHAR",)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial record store", _V1),
    Migration(2, "lexical search index over chunks", _V2),
    Migration(3, "lab fluid, category, priority and comment", _V3),
    Migration(4, "lab local code", _V4),
)
"""Chunks store offsets only; their text is ``substr`` of the document text (characters, 1-based),
which keeps the store (and loading) free of a second copy of every document."""
