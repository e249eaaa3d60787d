"""Loading FHIR R4 (JSON bundles, Bulk Data NDJSON) into the record store: all of it, or nothing.

Bundles are read one file at a time (a bundle is one JSON document); NDJSON files are read
line by line. Mapped rows are written in batches of ``batch_rows`` per table, so memory stays
bounded by one bundle plus one batch whatever the size of an NDJSON export. The whole load is
one transaction (:func:`~recordagent.records.source_write.source_write`): a malformed resource,
an interruption or a clash with patients already in the store leaves the store as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import duckdb
import polars as pl

from recordagent.errors import DataLoadError, LoadProblem, UserError
from recordagent.records.bundle import file_problem
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore
from recordagent.records.load_report import LoadProgress, LoadReport, no_progress
from recordagent.records.search_index import record_index_vocabulary
from recordagent.records.source_table import source_name
from recordagent.records.source_write import PhaseClock, SourceWrite, plan_source, source_write
from recordagent.records.terms import Vocabulary, load_vocabulary
from recordagent.records.value_rules import stored_value_problems
from recordagent.records.write_rows import clustered_by_patient, index_documents, insert_frame
from recordagent.settings import Settings
from recordagent.sources.fhir.mapping import BadResource, Mapper, Rows

__all__ = ["find_fhir_files", "load_fhir"]

_STR, _TS = pl.String, pl.Datetime("us")
_SCHEMAS: dict[str, dict[str, Any]] = {
    "patients": {
        "patient_id": _STR,
        "sex": _STR,
        "birth_date": pl.Date,
        "death_date": pl.Date,
    },
    "labs": {
        "lab_id": _STR,
        "patient_id": _STR,
        "time": _TS,
        "analyte_code": _STR,
        "analyte_name": _STR,
        "value_num": pl.Float64,
        "value_text": _STR,
        "unit": _STR,
        "ref_low": pl.Float64,
        "ref_high": pl.Float64,
        "flag": _STR,
        "fluid": _STR,
        "category": _STR,
        "priority": _STR,
        "comment": _STR,
        "local_code": _STR,
    },
    "events": {
        "event_id": _STR,
        "patient_id": _STR,
        "start_time": _TS,
        "end_time": _TS,
        "kind": _STR,
        "code": _STR,
        "label": _STR,
        "detail": _STR,
    },
    "documents": {
        "document_id": _STR,
        "patient_id": _STR,
        "date": _TS,
        "type": _STR,
        "title": _STR,
        "text": _STR,
    },
}
# NDJSON files are read in this order of resource type (from the file name), so references
# to patients and medications resolve, and DocumentReferences are known before the
# DiagnosticReports whose presentedForm they duplicate.
_NDJSON_ORDER = ("Patient", "Medication", "DocumentReference")


def _is_ndjson(path: Path) -> bool:
    return path.name.endswith((".ndjson", ".ndjson.gz"))


def _ndjson_rank(path: Path) -> tuple[int, str]:
    stem = path.name.split(".")[0]
    prefix = stem.split("-")[0].split("_")[0]
    rank = _NDJSON_ORDER.index(prefix) if prefix in _NDJSON_ORDER else len(_NDJSON_ORDER)
    return rank, path.name


def find_fhir_files(path: Path) -> tuple[Path, list[Path]]:
    """The folder and the FHIR files to read: bundles (*.json) first, then NDJSON.

    Raises:
        UserError: ``path`` does not exist or holds no FHIR file.
        DataLoadError: A FHIR file in the folder is not a regular file (a named pipe, a
            broken link).
    """
    if not path.is_dir() and os.path.lexists(path):
        problem = file_problem(path, str(path))
        if problem is not None:  # a named pipe would block the load forever
            raise UserError(f"{path} {problem.message}")
        if not (path.suffix == ".json" or _is_ndjson(path)):
            raise UserError(f"{path} is not a FHIR file (.json, .ndjson or .ndjson.gz)")
        return path.parent, [path]
    if not path.is_dir():
        raise UserError(f"{path} does not exist")
    named = [p for p in path.iterdir() if p.suffix == ".json" or _is_ndjson(p)]
    problems = [
        problem
        for p in named
        if (problem := file_problem(p, p.name)) is not None and not p.is_dir()
    ]
    if problems:
        raise DataLoadError(problems)
    bundles = sorted(p for p in named if p.is_file() and p.suffix == ".json")
    ndjson = sorted((p for p in named if p.is_file() and _is_ndjson(p)), key=_ndjson_rank)
    if not bundles and not ndjson:
        raise UserError(f"{path} holds no FHIR file (*.json bundles, *.ndjson, *.ndjson.gz)")
    return path, [*bundles, *ndjson]


MAPPING_VERSION = "2026-12-05.2"
"""Changes whenever the mapping writes other rows from the same files (here: inpatient
encounters as admissions), so a reload of unchanged files is not taken for 'unchanged'."""


def _fingerprint(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(f"fhir mapping {MAPPING_VERSION}\0".encode())
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


class _Writer:
    """Buffers mapped rows and writes them in batches (inside the caller's transaction)."""

    def __init__(
        self, write: SourceWrite, chunker: Chunker, vocabulary: Vocabulary, batch_rows: int
    ) -> None:
        self.con, self.source_id, self.counts = write.con, write.source_id, write.counts
        self.chunker, self.vocabulary, self.batch_rows = chunker, vocabulary, batch_rows
        self.rows = Rows()
        self.skipped: dict[str, int] = {}
        self.altered: dict[str, int] = {}
        self.tokens = 0

    def maybe_flush(self, label: str) -> None:
        rows = self.rows
        if max(len(rows.patients), len(rows.labs), len(rows.events)) >= self.batch_rows or (
            len(rows.documents) >= max(1, self.batch_rows // 10)
        ):
            self.flush(label)

    def flush(self, label: str) -> None:
        rows, self.rows = self.rows, Rows()
        for reason, n in rows.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n
        for change, n in rows.altered.items():
            self.altered[change] = self.altered.get(change, 0) + n
        try:
            for table in ("patients", "labs", "events", "documents"):
                data: list[dict[str, Any]] = getattr(rows, table)
                if not data:
                    continue
                frame = clustered_by_patient(pl.DataFrame(data, schema=_SCHEMAS[table]))
                insert_frame(self.con, table, frame, self.source_id)
                self.counts[table] += frame.height
                if table == "documents":
                    self._index(frame)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise DataLoadError(
                [LoadProblem(label, f"the store refused the rows: {first}")]
            ) from exc

    def _index(self, documents: pl.DataFrame) -> None:
        chunks, tokens = index_documents(
            self.con, documents, self.source_id, self.chunker, self.vocabulary
        )
        self.counts["chunks"] += chunks
        self.tokens += tokens

    def finish(self, label: str) -> None:
        self.flush(label)
        record_index_vocabulary(self.con, self.source_id, self.vocabulary)


def _resource_name(resource: Any) -> str:
    if not isinstance(resource, dict):
        return "not a resource"
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"


def _load_bundle(file: Path, label: str, mapper: Mapper, writer: _Writer) -> None:
    try:
        with file.open("rb") as handle:
            document = json.load(handle)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, text that is not UTF-8 and an integer of more
        # than 4300 digits; RecursionError an array nested thousands deep.
        row = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise DataLoadError(
            [LoadProblem(label, f"not valid JSON: {_brief(exc)}", row=row)]
        ) from exc
    if not isinstance(document, dict) or "resourceType" not in document:
        raise DataLoadError([LoadProblem(label, "not a FHIR resource (no resourceType)")])
    if document["resourceType"] == "Bundle":
        entries = [(e.get("fullUrl"), e.get("resource")) for e in document.get("entry") or []]
    else:
        entries = [(None, document)]
    for i, (full_url, resource) in enumerate(entries):
        try:
            if not isinstance(resource, dict):
                raise BadResource("has no resource")
            mapper.remember(resource, full_url)
        except BadResource as exc:
            where = f"entry {i} ({_resource_name(resource)})"
            raise DataLoadError([LoadProblem(label, f"{where} {exc}")]) from exc
    for i, (full_url, resource) in enumerate(entries):
        try:
            fallback = str(full_url or f"{file.stem}-entry-{i}").removeprefix("urn:uuid:")
            mapper.map(resource, writer.rows, fallback)
        except BadResource as exc:
            where = f"entry {i} ({_resource_name(resource)})"
            raise DataLoadError([LoadProblem(label, f"{where} {exc}")]) from exc
    writer.maybe_flush(label)


def _brief(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]


def _open_text(file: Path) -> IO[str]:
    if file.name.endswith(".gz"):
        return gzip.open(file, "rt", encoding="utf-8")
    return file.open("r", encoding="utf-8")


def _lines(file: Path, label: str) -> Iterator[tuple[int, str]]:
    try:
        with _open_text(file) as handle:
            yield from enumerate(handle, start=1)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataLoadError([LoadProblem(label, f"cannot be read: {exc}")]) from exc


def _load_ndjson(file: Path, label: str, mapper: Mapper, writer: _Writer) -> None:
    for number, line in _lines(file, label):
        if not line.strip():
            continue
        try:
            resource = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = LoadProblem(label, f"line {number} is not valid JSON: {exc.msg}", row=number)
            raise DataLoadError([problem]) from exc
        except (ValueError, RecursionError) as exc:  # see _load_bundle
            problem = LoadProblem(
                label, f"line {number} is not valid JSON: {_brief(exc)}", row=number
            )
            raise DataLoadError([problem]) from exc
        try:
            if not isinstance(resource, dict) or "resourceType" not in resource:
                raise BadResource("is not a FHIR resource (no resourceType)")
            mapper.remember(resource)
            mapper.map(resource, writer.rows, f"{file.name.split('.')[0]}-line-{number}")
        except BadResource as exc:
            name = _resource_name(resource)
            problem = LoadProblem(label, f"line {number} ({name}) {exc}", row=number)
            raise DataLoadError([problem]) from exc
        writer.maybe_flush(label)


def load_fhir(
    store: RecordStore,
    path: str | Path,
    *,
    settings: Settings | None = None,
    source: str | None = None,
    replace: bool = False,
    progress: LoadProgress | None = None,
    chunker: Chunker | None = None,
    batch_rows: int = 20_000,
) -> LoadReport:
    """Load FHIR R4 at ``path`` (a bundle or NDJSON file, or a folder of them) into ``store``.

    Args:
        store: The record store.
        path: A ``.json`` bundle (or single resource), a ``.ndjson``/``.ndjson.gz`` Bulk Data
            file, or a folder holding such files (not searched recursively).
        settings: Chunking settings for documents; defaults when omitted.
        source: Name to register the data under; the folder (or file) name by default.
        replace: Replace a source of the same name instead of refusing.
        progress: Called as ``progress(file, done, total)``, once per file read.
        chunker: A chunker to reuse (built from ``settings`` otherwise).
        batch_rows: Rows per table buffered before a write (documents: a tenth of it).

    Returns:
        The report; ``counts`` holds rows per table and, under ``skipped: <reason>``, what
        was not loaded (resource types the loader does not map, URL-only attachments, ...).

    Raises:
        UserError: No FHIR file at ``path``, or the source name is taken by other files.
        DataLoadError: Malformed input (naming the file and line or bundle entry) or rows the
            store refuses (patients already loaded by another source); nothing was written.
    """
    settings = settings or Settings()
    report = progress or no_progress
    clock = PhaseClock(("read", "write"))
    with clock("read"):
        root, files = find_fhir_files(Path(path))
        location = (root if Path(path).is_dir() else Path(path)).resolve()
        name = source_name(
            source, location.name.split(".")[0] if Path(path).is_file() else location.name
        )
        plan = plan_source(
            store, name, location, _fingerprint(root, files), replace=replace, what="these files"
        )
    if plan.unchanged:
        return plan.report()
    with clock("write"):
        chunker = chunker or Chunker(settings.chunking)
    with source_write(store, plan, chunker, clock) as write, clock("write"):
        writer = _Writer(write, chunker, load_vocabulary(), batch_rows)
        mapper = Mapper()
        label = ""
        for done, file in enumerate(files):
            label = file.relative_to(root).as_posix()
            report(label, done, len(files))
            if _is_ndjson(file):
                _load_ndjson(file, label, mapper, writer)
            else:
                _load_bundle(file, label, mapper, writer)
        writer.finish(label)
        report("done", len(files), len(files))
        bad = stored_value_problems(write.con, write.source_id)
        if bad:  # the mapping checks every value; this is the store's last line
            raise DataLoadError([b.problem(location.name) for b in bad])
    counts = dict(write.counts)
    counts.update({f"skipped: {k}": v for k, v in sorted(writer.skipped.items())})
    return plan.report(
        counts=counts,
        document_tokens=writer.tokens,
        tokenizer=chunker.tokenizer.description,
        seconds=clock.rounded(),
        warnings=[f"{n} {change}" for change, n in sorted(writer.altered.items())],
    )
