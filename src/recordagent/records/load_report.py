"""What every loader reports: :class:`LoadReport` at the end, :data:`LoadProgress` on the way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["LoadProgress", "LoadReport", "no_progress"]

LoadProgress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)`` while loading or generating records.

A phase is a step of the work (validate, chunk, write) or the input table or file in hand.
"""


def no_progress(phase: str, done: int, total: int) -> None:
    """A :data:`LoadProgress` that reports nowhere (when the caller gave none)."""


class LoadReport(BaseModel):
    """What a load did, whatever the source kind (bundle, MIMIC-IV, OMOP, FHIR)."""

    source: str = Field(description="Name the input is registered under in `sources`.")
    location: str = Field(description="Absolute path of the loaded folder or file.")
    fingerprint: str = Field(description="SHA-256 of the input's files.")
    status: Literal["loaded", "replaced", "unchanged"] = Field(
        description="'unchanged' when the same files were already loaded (nothing written)."
    )
    counts: dict[str, int] = Field(
        default_factory=dict, description="Rows written per table (patients ... chunks)."
    )
    document_tokens: int = Field(default=0, description="Tokens over all document texts.")
    tokenizer: str = Field(default="", description="What counted the tokens.")
    ignored_files: list[str] = Field(
        default_factory=list, description="Files in the input folder the loader does not read."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Changes made to values while loading them, with counts: leap seconds "
        "stored as second 59.999999, digits below a microsecond truncated.",
    )
    timezone: str | None = Field(
        default=None,
        description="IANA zone whose local time timestamps with a UTC offset were converted "
        "to (settings load.convert_timezone); None when no conversion was asked for.",
    )
    converted_timestamps: int = Field(
        default=0, description="Timestamps with a UTC offset converted to `timezone` local time."
    )
    rejected: dict[str, int] = Field(
        default_factory=dict,
        description="Rows left out per table by a quarantining load (one given a reject "
        "file), those naming a rejected patient included; empty otherwise.",
    )
    reject_file: str | None = Field(
        default=None,
        description="Absolute path of the reject file the load wrote (one line per problem "
        "of a rejected row), when it was given one.",
    )
    seconds: dict[str, float] = Field(
        default_factory=dict,
        description="Wall time per phase: read (locate and fingerprint the files), validate "
        "(parse and check every table), chunk (tokenizer included), index (search terms), "
        "write; a loader that does its work in SQL times only the phases it has.",
    )
