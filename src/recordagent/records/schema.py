"""The record model: what a bundle may contain, and the rows the store hands back.

The table specifications drive bundle validation; the DDL that creates the store lives in
:mod:`recordagent.records.migrations` and is frozen per version (a test keeps the two in step).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BUNDLE_TABLES",
    "EVENT_KINDS",
    "SEXES",
    "Chunk",
    "Column",
    "ColumnType",
    "Document",
    "Event",
    "LabValue",
    "Patient",
    "TableSpec",
]


class ColumnType(StrEnum):
    """Logical column types of the bundle format."""

    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    NUMBER = "number"


EVENT_KINDS: tuple[str, ...] = (
    "admission",
    "diagnosis",
    "therapy",
    "medication",
    "procedure",
    "transplant",
    "imaging",
    "response",
    "progression",
    "encounter",
    "death",
    "other",
)
SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")


@dataclass(frozen=True)
class Column:
    """One column of a bundle table and the rules its values obey."""

    name: str
    type: ColumnType
    description: str
    required: bool = False
    nonblank: bool = False
    allowed: tuple[str, ...] | None = None
    finite: bool = False


@dataclass(frozen=True)
class TableSpec:
    """A bundle table: its id column, its columns, and which columns reference patients."""

    name: str
    description: str
    id_column: str
    columns: tuple[Column, ...]
    references_patient: bool = True
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


_T, _D, _TS, _N = ColumnType.TEXT, ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.NUMBER

PATIENTS = TableSpec(
    name="patients",
    description="One row per patient.",
    id_column="patient_id",
    references_patient=False,
    columns=(
        Column("patient_id", _T, "Stable pseudonymous patient identifier.", True, True),
        Column(
            "sex",
            _T,
            "female, male, other or unknown (case-insensitive; F/M accepted).",
            allowed=SEXES,
        ),
        Column("birth_date", _D, "Date of birth (or a shifted/approximate date)."),
        Column("death_date", _D, "Date of death, if known."),
    ),
)
DOCUMENTS = TableSpec(
    name="documents",
    description="Clinical documents: notes, letters, reports.",
    id_column="document_id",
    columns=(
        Column("document_id", _T, "Unique document identifier.", True, True),
        Column("patient_id", _T, "The patient the document belongs to.", True, True),
        Column("date", _TS, "When the document was written (date or date and time).", True),
        Column("type", _T, "Document type, e.g. 'progress note', 'discharge summary'.", True, True),
        Column("title", _T, "Document title as shown in the source system."),
        Column("text", _T, "Full plain text of the document.", True, True),
    ),
)
LABS = TableSpec(
    name="labs",
    description="Laboratory results, one value per row.",
    id_column="lab_id",
    columns=(
        Column("lab_id", _T, "Unique row identifier (cited as evidence).", True, True),
        Column("patient_id", _T, "The patient the value belongs to.", True, True),
        Column("time", _TS, "Specimen collection (or result) time.", True),
        Column("analyte_code", _T, "Code of the analyte: LOINC where known, else a local code."),
        Column("analyte_name", _T, "Analyte name as reported, e.g. 'Creatinine'.", True, True),
        Column("value_num", _N, "Numeric result, if the result is numeric.", finite=True),
        Column("value_text", _T, "Textual result (e.g. 'positive', '<0.5'), if any."),
        Column("unit", _T, "Unit of value_num as reported, e.g. 'mg/dL'."),
        Column("ref_low", _N, "Lower limit of the reference range.", finite=True),
        Column("ref_high", _N, "Upper limit of the reference range.", finite=True),
        Column("flag", _T, "Abnormality flag as reported, e.g. 'H', 'L', 'abnormal'."),
        Column("fluid", _T, "Specimen fluid, e.g. 'Blood', 'Urine', 'BLOOD CULTURE'."),
        Column("category", _T, "Lab section, e.g. 'Chemistry', 'Hematology', 'Microbiology'."),
        Column("priority", _T, "Order priority as reported, e.g. 'ROUTINE', 'STAT'."),
        Column("comment", _T, "The laboratory's comment on the result, if any."),
        Column(
            "local_code",
            _T,
            "The source system's own code for the analyte when analyte_code holds a standard "
            "one, e.g. a laboratory test code beside its LOINC code.",
        ),
    ),
)
EVENTS = TableSpec(
    name="events",
    description="Dated clinical events: diagnoses, therapies, procedures, admissions, responses.",
    id_column="event_id",
    columns=(
        Column("event_id", _T, "Unique event identifier (cited as evidence).", True, True),
        Column("patient_id", _T, "The patient the event belongs to.", True, True),
        Column("start_time", _TS, "When the event started (or happened).", True),
        Column("end_time", _TS, "When the event ended, for events with a duration."),
        Column(
            "kind",
            _T,
            "Event kind: " + ", ".join(EVENT_KINDS) + ".",
            True,
            True,
            allowed=EVENT_KINDS,
        ),
        Column("code", _T, "Code in the source vocabulary (ICD-10, ATC, OPS, ...), if any."),
        Column("label", _T, "Human-readable label, e.g. 'VRd cycle 1'.", True, True),
        Column("detail", _T, "Further detail as free text."),
    ),
)

BUNDLE_TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (PATIENTS, DOCUMENTS, LABS, EVENTS)
}

# Analytes whose values may legitimately be negative (differences, excesses, scores); every
# other numeric lab value is a concentration, count or ratio and cannot fall below zero.
SIGNED_ANALYTE_WORDS: tuple[str, ...] = (
    "base excess",
    "base deficit",
    "delta",
    "change",
    "difference",
    "z-score",
    "z score",
    "t-score",
    "t score",
    "sds",
)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class Patient(_Row):
    """A patient as the store knows them."""

    patient_id: str = Field(description="Pseudonymous patient identifier.")
    sex: str | None = Field(default=None, description="female, male, other or unknown.")
    birth_date: dt.date | None = Field(default=None, description="Date of birth, if known.")
    death_date: dt.date | None = Field(default=None, description="Date of death, if known.")


class Document(_Row):
    """A clinical document."""

    document_id: str = Field(description="Document identifier, citable as evidence.")
    patient_id: str = Field(description="Owning patient.")
    date: dt.datetime = Field(description="When the document was written.")
    type: str = Field(description="Document type, e.g. 'progress note'.")
    title: str | None = Field(default=None, description="Document title.")
    text: str = Field(description="Full plain text.")


class Chunk(_Row):
    """A retrievable span of a document, bounded in tokens."""

    chunk_id: str = Field(description="'<document_id>:<position>'.")
    document_id: str = Field(description="Document the chunk was cut from.")
    patient_id: str = Field(description="Owning patient.")
    position: int = Field(description="0-based order of the chunk within its document.")
    section: str | None = Field(default=None, description="Heading of the section it lies in.")
    char_start: int = Field(description="Offset of the first character in the document text.")
    char_end: int = Field(description="Offset one past the last character.")
    text: str = Field(description="The chunk text: document.text[char_start:char_end].")
    token_count: int = Field(description="Tokens in text, counted with the store's tokenizer.")


class LabValue(_Row):
    """One laboratory result."""

    lab_id: str = Field(description="Row identifier, citable as evidence.")
    patient_id: str = Field(description="Owning patient.")
    time: dt.datetime = Field(description="Collection time.")
    analyte_code: str | None = Field(default=None, description="LOINC or local code.")
    analyte_name: str = Field(description="Analyte name as reported.")
    value_num: float | None = Field(default=None, description="Numeric result.")
    value_text: str | None = Field(default=None, description="Textual result.")
    unit: str | None = Field(default=None, description="Unit of value_num.")
    ref_low: float | None = Field(default=None, description="Reference range lower limit.")
    ref_high: float | None = Field(default=None, description="Reference range upper limit.")
    flag: str | None = Field(default=None, description="Abnormality flag as reported.")
    fluid: str | None = Field(default=None, description="Specimen fluid, if reported.")
    category: str | None = Field(default=None, description="Lab section, if reported.")
    priority: str | None = Field(default=None, description="Order priority, if reported.")
    comment: str | None = Field(default=None, description="The laboratory's comment, if any.")
    local_code: str | None = Field(
        default=None, description="The source system's own code, beside a standard one."
    )


class Event(_Row):
    """A dated clinical event."""

    event_id: str = Field(description="Event identifier, citable as evidence.")
    patient_id: str = Field(description="Owning patient.")
    start_time: dt.datetime = Field(description="Start (or occurrence) time.")
    end_time: dt.datetime | None = Field(default=None, description="End time, if any.")
    kind: str = Field(description="Event kind, e.g. 'therapy'.")
    code: str | None = Field(default=None, description="Source vocabulary code.")
    label: str = Field(description="Human-readable label.")
    detail: str | None = Field(default=None, description="Free-text detail.")
