"""Loading a record bundle into the store: validate everything, chunk, write in one transaction.

Loading is all-or-nothing: every problem is found before anything is written, and the write runs
in a single transaction that is rolled back on any failure, so a failed load leaves the store
exactly as it was. Loading the same files again is a no-op (their fingerprint is recorded in
``sources``); ``replace=True`` swaps a previously loaded source for the new files.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl
from pydantic import BaseModel, Field

from recordagent.errors import DataLoadError, LoadProblem, UserError
from recordagent.records.bundle import (
    ROW_COLUMN,
    BundleFiles,
    find_bundle_files,
    fingerprint_files,
    read_table,
)
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, first_row
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.validate import ProblemLog, validate_table
from recordagent.settings import Settings

__all__ = ["LoadReport", "ProgressCallback", "load_bundle"]

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases: read, validate, chunk, write."""

_SORT_KEYS = {
    "patients": ["patient_id"],
    "documents": ["patient_id", "date", "document_id"],
    "labs": ["patient_id", "time", "lab_id"],
    "events": ["patient_id", "start_time", "event_id"],
}
_TABLE_ORDER = ("patients", "documents", "labs", "events")


class LoadReport(BaseModel):
    """What a load did."""

    source: str = Field(description="Name the bundle is registered under in `sources`.")
    location: str = Field(description="Absolute path of the bundle folder.")
    fingerprint: str = Field(description="SHA-256 of the bundle's files.")
    status: Literal["loaded", "replaced", "unchanged"] = Field(
        description="'unchanged' when the same files were already loaded (nothing written)."
    )
    counts: dict[str, int] = Field(
        default_factory=dict, description="Rows written per table (patients ... chunks)."
    )
    document_tokens: int = Field(default=0, description="Tokens over all document texts.")
    tokenizer: str = Field(default="", description="What counted the tokens.")
    ignored_files: list[str] = Field(
        default_factory=list, description="Files in the bundle folder that are not bundle tables."
    )
    seconds: dict[str, float] = Field(
        default_factory=dict, description="Wall time per phase: read, validate, chunk, write."
    )


def load_bundle(
    store: RecordStore,
    path: str | Path,
    *,
    settings: Settings | None = None,
    source: str | None = None,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    chunker: Chunker | None = None,
) -> LoadReport:
    """Validate a bundle folder and load it into ``store``.

    Args:
        store: The record store to load into.
        path: The bundle folder.
        settings: Chunking and reporting settings; defaults when omitted.
        source: Name to register the bundle under; the folder name by default.
        replace: Replace a source of the same name (deleting its rows) instead of refusing.
        progress: Optional progress callback.
        chunker: A chunker to reuse across loads (built from ``settings`` otherwise).

    Raises:
        DataLoadError: The bundle is invalid; nothing was written.
        UserError: The folder is missing, or the source name is taken by other files and
            ``replace`` is not set.
    """
    settings = settings or Settings()
    report_progress = progress or (lambda phase, done, total: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    files = find_bundle_files(path)
    name = source or files.root.resolve().name
    all_paths = list(files.tables.values())
    frames: dict[str, pl.DataFrame] = {}
    labels: dict[str, str] = {}
    log = ProblemLog()
    if files.documents_manifest is not None:
        manifest_label = files.label(files.documents_manifest)
        frame, text_paths = _read_document_folder(files, log)
        frames["documents"], labels["documents"] = frame, manifest_label
        all_paths += [files.documents_manifest, *text_paths]
    fingerprint = fingerprint_files(all_paths, files.root)

    existing = _existing_source(store, name, fingerprint)
    if existing is not None and (existing[2] == fingerprint) and not replace:
        return LoadReport(
            source=existing[1],
            location=str(files.root.resolve()),
            fingerprint=fingerprint,
            status="unchanged",
            ignored_files=list(files.ignored),
        )
    named = _source_by_name(store, name)
    if named is not None and not replace:
        raise UserError(
            f"source '{name}' is already loaded from different files; pass replace to swap it "
            "for this bundle, or load it under another source name"
        )
    replaced_id = named[0] if named is not None else None

    for i, (table, file) in enumerate(files.tables.items()):
        report_progress("read", i, len(files.tables))
        labels[table] = files.label(file)
        frames[table] = read_table(file, labels[table])
    report_progress("read", len(files.tables), len(files.tables))
    timings["read"] = time.perf_counter() - clock

    clock = time.perf_counter()
    typed: dict[str, pl.DataFrame] = {}
    for i, (table, frame) in enumerate(frames.items()):
        report_progress("validate", i, len(frames))
        typed[table] = validate_table(BUNDLE_TABLES[table], frame, labels[table], log)
    report_progress("validate", len(frames), len(frames))
    if not log:
        _check_against_store(store, typed, labels, replaced_id, log)
    if log:
        raise DataLoadError(log.problems[: settings.load.max_reported_problems], total=log.total)
    timings["validate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    chunker = chunker or Chunker(settings.chunking)
    chunks, n_tokens = _chunk_documents(chunker, typed.get("documents"), report_progress)
    timings["chunk"] = time.perf_counter() - clock

    clock = time.perf_counter()
    counts = {t: typed[t].height for t in _TABLE_ORDER if t in typed}
    counts["chunks"] = chunks.height
    _write(
        store,
        name,
        files,
        fingerprint,
        chunker,
        typed,
        chunks,
        counts,
        replaced_id,
        report_progress,
    )
    timings["write"] = time.perf_counter() - clock
    return LoadReport(
        source=name,
        location=str(files.root.resolve()),
        fingerprint=fingerprint,
        status="replaced" if replaced_id is not None else "loaded",
        counts={t: counts.get(t, 0) for t in (*_TABLE_ORDER, "chunks")},
        document_tokens=n_tokens,
        tokenizer=chunker.tokenizer.description,
        ignored_files=list(files.ignored),
        seconds={k: round(v, 4) for k, v in timings.items()},
    )


def _read_document_folder(files: BundleFiles, log: ProblemLog) -> tuple[pl.DataFrame, list[Path]]:
    """Read the manifest and each text file it names into a documents frame with ``text``."""
    assert files.documents_manifest is not None
    label = files.label(files.documents_manifest)
    manifest = read_table(files.documents_manifest, label)
    if "file" not in manifest.columns:
        raise DataLoadError([LoadProblem(label, "required column is missing", column="file")])
    folder = files.documents_manifest.parent.resolve()
    texts: list[str | None] = []
    paths: list[Path] = []
    for row, name in zip(manifest[ROW_COLUMN], manifest["file"].cast(pl.String), strict=True):
        if name is None or not name.strip():
            log.add(LoadProblem(label, "value is required", row, "file"))
            texts.append(None)
            continue
        target = (folder / name.strip()).resolve()
        if not target.is_relative_to(folder):
            log.add(
                LoadProblem(label, f"'{name}' points outside the documents folder", row, "file")
            )
            texts.append(None)
            continue
        try:
            texts.append(target.read_text(encoding="utf-8"))
            paths.append(target)
        except FileNotFoundError:
            log.add(LoadProblem(label, f"text file '{name}' not found", row, "file"))
            texts.append(None)
        except (UnicodeDecodeError, OSError) as exc:
            log.add(LoadProblem(label, f"cannot read '{name}' as UTF-8 text: {exc}", row, "file"))
            texts.append(None)
    frame = manifest.drop("file").with_columns(pl.Series("text", texts, dtype=pl.String))
    # Rows whose file could not be read are reported already; keep them out of later checks.
    unread = [row for row, text in zip(manifest[ROW_COLUMN], texts, strict=True) if text is None]
    return frame.filter(~pl.col(ROW_COLUMN).is_in(unread)), paths


def _existing_source(
    store: RecordStore, name: str, fingerprint: str
) -> tuple[int, str, str] | None:
    """A source with these exact files (under any name), preferring the same name."""
    row = first_row(
        store.connection.execute(
            "SELECT source_id, name, fingerprint FROM sources WHERE fingerprint = $f "
            "ORDER BY name = $n DESC LIMIT 1",
            {"f": fingerprint, "n": name},
        ).fetchall()
    )
    return (int(row[0]), str(row[1]), str(row[2])) if row else None


def _source_by_name(store: RecordStore, name: str) -> tuple[int, str] | None:
    row = first_row(
        store.connection.execute(
            "SELECT source_id, fingerprint FROM sources WHERE name = $n", {"n": name}
        ).fetchall()
    )
    return (int(row[0]), str(row[1])) if row else None


def _check_against_store(
    store: RecordStore,
    typed: dict[str, pl.DataFrame],
    labels: dict[str, str],
    replaced_id: int | None,
    log: ProblemLog,
) -> None:
    """Ids already in the store, and references to patients that will not exist."""
    con = store.connection.cursor()
    keep = "source_id IS DISTINCT FROM $replaced"
    params = {"replaced": replaced_id}
    bundle_patients = typed["patients"].select("patient_id") if "patients" in typed else None
    try:
        con.register(
            "_bundle_patients",
            bundle_patients
            if bundle_patients is not None
            else pl.DataFrame({"patient_id": []}, schema={"patient_id": pl.String}),
        )
        for table, frame in typed.items():
            spec = BUNDLE_TABLES[table]
            con.register("_incoming", frame.select(ROW_COLUMN, spec.id_column))
            clashes = con.execute(
                f"SELECT i.{ROW_COLUMN}, i.{spec.id_column}, s.name FROM _incoming i "
                f"JOIN {table} t ON t.{spec.id_column} = i.{spec.id_column} "
                f"JOIN sources s ON s.source_id = t.source_id WHERE t.{keep} "
                f"ORDER BY i.{ROW_COLUMN}",
                params,
            ).fetchall()
            con.unregister("_incoming")
            log.total += len(clashes)
            for row, ident, source_name in clashes[:3]:
                log.problems.append(
                    LoadProblem(
                        labels[table],
                        f"id '{ident}' is already loaded (source '{source_name}')",
                        row,
                        spec.id_column,
                    )
                )
            if not spec.references_patient:
                continue
            con.register("_refs", frame.select(ROW_COLUMN, "patient_id"))
            orphans = con.execute(
                f"SELECT r.{ROW_COLUMN}, r.patient_id FROM _refs r "
                "WHERE r.patient_id NOT IN (SELECT patient_id FROM _bundle_patients) "
                f"AND r.patient_id NOT IN (SELECT patient_id FROM patients WHERE {keep}) "
                f"ORDER BY r.{ROW_COLUMN}",
                params,
            ).fetchall()
            con.unregister("_refs")
            log.total += len(orphans)
            for row, patient in orphans[:3]:
                log.problems.append(
                    LoadProblem(
                        labels[table],
                        f"unknown patient '{patient}' (not "
                        "in this bundle's patients nor in the store)",
                        row,
                        "patient_id",
                    )
                )
        if replaced_id is not None:
            _check_replaced_patients_still_referenced(con, replaced_id, log)
    finally:
        con.close()


def _check_replaced_patients_still_referenced(
    con: duckdb.DuckDBPyConnection, replaced_id: int, log: ProblemLog
) -> None:
    rows = con.execute(
        "SELECT DISTINCT p.patient_id, s.name FROM patients p "
        "JOIN (SELECT patient_id, source_id FROM documents UNION ALL "
        "      SELECT patient_id, source_id FROM labs UNION ALL "
        "      SELECT patient_id, source_id FROM events) r "
        "  ON r.patient_id = p.patient_id AND r.source_id <> $replaced "
        "JOIN sources s ON s.source_id = r.source_id "
        "WHERE p.source_id = $replaced "
        "AND p.patient_id NOT IN (SELECT patient_id FROM _bundle_patients) ORDER BY 1",
        {"replaced": replaced_id},
    ).fetchall()
    for patient, other in rows:
        log.add(
            LoadProblem(
                "patients",
                f"patient '{patient}' would be removed by the "
                f"replacement but source '{other}' still has rows for them",
            )
        )


def _chunk_documents(
    chunker: Chunker, documents: pl.DataFrame | None, progress: ProgressCallback
) -> tuple[pl.DataFrame, int]:
    schema = {
        "chunk_id": pl.String,
        "document_id": pl.String,
        "patient_id": pl.String,
        "position": pl.Int32,
        "section": pl.String,
        "char_start": pl.Int32,
        "char_end": pl.Int32,
        "text": pl.String,
        "token_count": pl.Int32,
    }
    if documents is None or documents.height == 0:
        return pl.DataFrame(schema=schema), 0
    texts: list[str] = documents["text"].to_list()
    ids: list[str] = documents["document_id"].to_list()
    patients: list[str] = documents["patient_id"].to_list()
    total = len(texts)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress("chunk", done, total)

    results = chunker.chunk_many(texts, progress=step)
    columns: dict[str, list[object]] = {k: [] for k in schema}
    n_tokens = 0
    for doc_id, patient, text, result in zip(ids, patients, texts, results, strict=True):
        n_tokens += result.total_tokens
        for span in result.chunks:
            columns["chunk_id"].append(f"{doc_id}:{span.position}")
            columns["document_id"].append(doc_id)
            columns["patient_id"].append(patient)
            columns["position"].append(span.position)
            columns["section"].append(span.section)
            columns["char_start"].append(span.char_start)
            columns["char_end"].append(span.char_end)
            columns["text"].append(text[span.char_start : span.char_end])
            columns["token_count"].append(span.token_count)
    return pl.DataFrame(columns, schema=schema), n_tokens


def _write(
    store: RecordStore,
    name: str,
    files: BundleFiles,
    fingerprint: str,
    chunker: Chunker,
    typed: dict[str, pl.DataFrame],
    chunks: pl.DataFrame,
    counts: dict[str, int],
    replaced_id: int | None,
    progress: ProgressCallback,
) -> None:
    con = store.connection
    steps = [t for t in _TABLE_ORDER if t in typed] + ["chunks"]
    con.execute("BEGIN TRANSACTION")
    try:
        if replaced_id is not None:
            for table in ("chunks", "events", "labs", "documents", "patients", "sources"):
                con.execute(f"DELETE FROM {table} WHERE source_id = $s", {"s": replaced_id})
        row = first_row(
            con.execute("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchall()
        )
        source_id = int(row[0]) if row else 1
        con.execute(
            "INSERT INTO sources VALUES ($id, $name, $loc, $fp, $at, $ver, $tok, $max, "
            "$np, $nd, $nc, $nl, $ne)",
            {
                "id": source_id,
                "name": name,
                "loc": str(files.root.resolve()),
                "fp": fingerprint,
                "at": dt.datetime.now(),
                "ver": _package_version(),
                "tok": chunker.tokenizer.description,
                "max": chunker.settings.max_tokens,
                "np": counts.get("patients", 0),
                "nd": counts.get("documents", 0),
                "nc": counts.get("chunks", 0),
                "nl": counts.get("labs", 0),
                "ne": counts.get("events", 0),
            },
        )
        for i, table in enumerate(steps):
            progress("write", i, len(steps))
            if table == "chunks":
                frame, order = chunks, ["patient_id", "document_id", "position"]
            else:
                spec = BUNDLE_TABLES[table]
                frame, order = typed[table].select(spec.column_names), _SORT_KEYS[table]
            _insert(con, table, frame.sort(order), source_id)
        progress("write", len(steps), len(steps))
        con.execute("COMMIT")
    except duckdb.ConstraintException as exc:
        con.execute("ROLLBACK")
        raise DataLoadError(
            [LoadProblem(files.label(files.root), f"the store refused the rows: {exc}")]
        ) from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, source_id: int
) -> None:
    columns = ", ".join(frame.columns)
    con.register("_rows", frame.to_arrow())
    try:
        con.execute(
            f"INSERT INTO {table} ({columns}, source_id) SELECT {columns}, $sid FROM _rows",
            {"sid": source_id},
        )
    finally:
        con.unregister("_rows")


def _package_version() -> str:
    try:
        return version("recordagent")
    except PackageNotFoundError:
        return "unknown"


def store_fingerprints(store: RecordStore) -> dict[str, str]:
    """Fingerprint of every loaded source, by name (a data fingerprint for run manifests)."""
    rows = store.connection.execute(
        "SELECT name, fingerprint FROM sources ORDER BY name"
    ).fetchall()
    return {str(n): str(f) for n, f in rows}
