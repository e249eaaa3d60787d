"""The kinds of source ``recordagent load KIND PATH`` reads, declared as data.

Each loader has the same shape (see :class:`Loader`): it locates and fingerprints its input,
then writes through :func:`~recordagent.records.source_write.source_write`. Adding a source is
one loader module and one entry in :data:`SOURCES`; the command line takes its kinds, its help
and its dispatch from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from recordagent.errors import UserError
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore
from recordagent.records.load import load_bundle
from recordagent.records.load_report import LoadProgress, LoadReport
from recordagent.settings import Settings
from recordagent.sources.fhir.load import load_fhir
from recordagent.sources.mimic_iv.load import load_mimic_iv
from recordagent.sources.omop.load import load_omop

__all__ = [
    "DEFAULT_KIND",
    "SOURCES",
    "Loader",
    "RowOptionsLoader",
    "SourceKind",
    "load_source",
    "source_kind",
]


class Loader(Protocol):
    """Loads the input at ``path`` into ``store`` as one source, all or nothing."""

    def __call__(
        self,
        store: RecordStore,
        path: str | Path,
        *,
        settings: Settings | None = None,
        source: str | None = None,
        replace: bool = False,
        progress: LoadProgress | None = None,
        chunker: Chunker | None = None,
    ) -> LoadReport:
        """Load ``path``; see :func:`~recordagent.records.load.load_bundle` for the options."""
        ...


class RowOptionsLoader(Protocol):
    """A :class:`Loader` that also quarantines invalid rows into a reject file."""

    def __call__(
        self,
        store: RecordStore,
        path: str | Path,
        *,
        settings: Settings | None = None,
        source: str | None = None,
        replace: bool = False,
        progress: LoadProgress | None = None,
        chunker: Chunker | None = None,
        reject_path: str | Path | None = None,
    ) -> LoadReport:
        """Load ``path``; see :func:`~recordagent.records.load.load_bundle` for the options."""
        ...


@dataclass(frozen=True)
class SourceKind:
    """One kind of source: what it is called and holds, what path it takes, what loads it."""

    name: str
    """What ``recordagent load`` calls it (``mimic-iv``)."""
    description: str
    """What it is, in a few words, for help."""
    expects: str
    """The PATH it takes, for help."""
    load: Loader
    """Loads a PATH of this kind into a store."""
    row_options: RowOptionsLoader | None = None
    """The loader again, for kinds whose rows are checked one by one before anything is
    written, so that it can convert timestamps with a UTC offset (``load.convert_timezone``)
    and leave invalid rows out into a reject file; None for kinds that do neither."""


DEFAULT_KIND = SourceKind(
    "bundle",
    "a record bundle in the generic format",
    "a folder of patients, documents, labs and events tables",
    load_bundle,
    row_options=load_bundle,
)
"""The kind of a PATH given alone."""

SOURCES: tuple[SourceKind, ...] = (
    DEFAULT_KIND,
    SourceKind(
        "mimic-iv",
        "MIMIC-IV as PhysioNet distributes it",
        "a folder with hosp/, optional icu/ and note/",
        load_mimic_iv,
    ),
    SourceKind(
        "fhir",
        "FHIR R4 bundles or Bulk Data NDJSON",
        "a .json, .ndjson or .ndjson.gz file, or a folder of them",
        load_fhir,
    ),
    SourceKind(
        "omop",
        "an OMOP CDM 5.3 / 5.4 export",
        "a folder or .zip of CSV tables, or a DuckDB database file",
        load_omop,
    ),
)
"""Every kind, in the order help and messages list them."""


def source_kind(name: str) -> SourceKind | None:
    """The kind called ``name``, if there is one."""
    return next((kind for kind in SOURCES if kind.name == name), None)


def load_source(
    kind: SourceKind,
    store: RecordStore,
    path: str | Path,
    *,
    settings: Settings,
    source: str | None = None,
    replace: bool = False,
    progress: LoadProgress | None = None,
    reject_path: str | Path | None = None,
) -> LoadReport:
    """Load ``path`` as a source of ``kind``, refusing options the kind does not take.

    Raises:
        UserError: A reject file, or a zone to convert timestamps to, for a kind whose loader
            does not take them (it would otherwise be ignored without a word).
    """
    if kind.row_options is None:
        asked = []
        if settings.load.convert_timezone is not None:
            asked.append(
                f"converting timestamps to {settings.load.convert_timezone} (--convert-timezone; "
                "load.convert_timezone in settings)"
            )
        if reject_path is not None:
            asked.append("a reject file (--reject-file)")
        if asked:
            takers = ", ".join(k.name for k in SOURCES if k.row_options is not None)
            raise UserError(
                f"{' and '.join(asked)} {'are' if len(asked) > 1 else 'is'} for {takers} loads "
                f"only: a {kind.name} load is all or nothing and keeps times as its loader "
                "documents; leave the option out"
            )
        return kind.load(
            store, path, settings=settings, source=source, replace=replace, progress=progress
        )
    return kind.row_options(
        store,
        path,
        settings=settings,
        source=source,
        replace=replace,
        progress=progress,
        reject_path=reject_path,
    )
