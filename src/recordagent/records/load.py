"""Loading a record bundle into the store: validate everything, chunk, write in one transaction.

Loading is all-or-nothing: every problem is found before anything is written, and the write runs
in a single transaction (:func:`~recordagent.records.source_write.source_write`) that is rolled
back on any failure, so a failed load leaves the store exactly as it was. Loading the same files
again is a no-op (their fingerprint is recorded in ``sources``); ``replace=True`` swaps a
previously loaded source for the new files.
"""

from __future__ import annotations

import codecs
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import polars as pl

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.records.bundle import (
    ROW_COLUMN,
    BundleFiles,
    find_bundle_files,
    fingerprint_files,
    read_regular_bytes,
    read_table,
    special_file_kind,
)
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore
from recordagent.records.load_report import LoadProgress, LoadReport, no_progress
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.search_index import build_index_rows, insert_index
from recordagent.records.source_table import source_name
from recordagent.records.source_write import PhaseClock, SourceWrite, plan_source, source_write
from recordagent.records.terms import load_vocabulary
from recordagent.records.validate import ProblemLog, validate_table
from recordagent.records.write_rows import (
    chunk_documents,
    clustered_by_patient,
    insert_frame,
)
from recordagent.settings import Settings

__all__ = ["load_bundle"]

_TABLE_ORDER = ("patients", "documents", "labs", "events")


def load_bundle(
    store: RecordStore,
    path: str | Path,
    *,
    settings: Settings | None = None,
    source: str | None = None,
    replace: bool = False,
    progress: LoadProgress | None = None,
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
    report_progress = progress or no_progress
    clock = PhaseClock()

    with clock("read"):
        files = find_bundle_files(path)
        name = source_name(source, files.root.resolve().name)
        all_paths = list(files.tables.values())
        frames: dict[str, pl.DataFrame] = {}
        labels: dict[str, str] = {}
        log = ProblemLog()
        if files.documents_manifest is not None:
            manifest_label = files.label(files.documents_manifest)
            frame, text_paths = _read_document_folder(files, log)
            frames["documents"], labels["documents"] = frame, manifest_label
            all_paths += [files.documents_manifest, *text_paths]
        plan = plan_source(
            store,
            name,
            files.root.resolve(),
            fingerprint_files(all_paths, files.root),
            replace=replace,
            what="this bundle",
        )
    if plan.unchanged:
        return plan.report(ignored_files=list(files.ignored))

    with clock("validate"):
        labels.update({table: files.label(file) for table, file in files.tables.items()})
        order = [t for t in BUNDLE_TABLES if t in files.tables or t in frames]

        def read_and_validate(table: str) -> tuple[pl.DataFrame, ProblemLog]:
            frame = (
                frames[table] if table in frames else read_table(files.tables[table], labels[table])
            )
            table_log = ProblemLog()
            return validate_table(BUNDLE_TABLES[table], frame, labels[table], table_log), table_log

        typed: dict[str, pl.DataFrame] = {}
        report_progress("validate", 0, len(order))
        # polars releases the GIL, so tables are parsed and checked side by side; problems are
        # merged in table order, so the report does not depend on timing.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done, (table, (frame, table_log)) in enumerate(
                zip(order, pool.map(read_and_validate, order), strict=True), start=1
            ):
                typed[table] = frame
                log.extend(table_log)
                report_progress("validate", done, len(order))
        if not log:
            _check_against_store(store, typed, labels, plan.replaced_id, log)
        if log:
            raise DataLoadError(
                log.problems[: settings.load.max_reported_problems], total=log.total
            )

    with clock("chunk"):
        chunker = chunker or Chunker(settings.chunking)  # loading the tokenizer is chunking work
    with source_write(store, plan, chunker, clock) as write:
        with clock("write"):
            _write_tables(write, typed, report_progress)
        with clock("chunk"):
            chunks, n_tokens = chunk_documents(chunker, typed.get("documents"), report_progress)
        with clock("index"):
            vocabulary = load_vocabulary()
            chunks = clustered_by_patient(chunks)
            documents = typed.get("documents", pl.DataFrame(schema={"document_id": pl.String}))
            terms = build_index_rows(chunks, documents, vocabulary)
        with clock("write"):
            write.counts["chunks"] = chunks.height
            insert_frame(write.con, "chunks", chunks, write.source_id)
        with clock("index"):
            insert_index(write.con, terms, write.source_id, vocabulary)
    return plan.report(
        counts=write.counts,
        document_tokens=n_tokens,
        tokenizer=chunker.tokenizer.description,
        ignored_files=list(files.ignored),
        seconds=clock.rounded(),
        warnings=list(log.warnings),
    )


def _read_document_folder(files: BundleFiles, log: ProblemLog) -> tuple[pl.DataFrame, list[Path]]:
    """Read the manifest and each text file it names into a documents frame with ``text``."""
    assert files.documents_manifest is not None
    label = files.label(files.documents_manifest)
    manifest = read_table(files.documents_manifest, label)
    if "file" not in manifest.columns:
        raise DataLoadError([LoadProblem(label, "required column is missing", column="file")])
    if "text" in manifest.columns:
        raise DataLoadError(
            [
                LoadProblem(
                    label,
                    "unknown column: a manifest names each text file in 'file'; the text "
                    "itself comes from that file",
                    column="text",
                )
            ]
        )
    if manifest.schema["file"] not in (pl.String, pl.Categorical) and not isinstance(
        manifest.schema["file"], pl.Enum
    ):
        raise DataLoadError(
            [
                LoadProblem(
                    label,
                    f"expected text values (file names), found {manifest.schema['file']}",
                    column="file",
                )
            ]
        )
    folder = files.documents_manifest.parent.resolve()
    texts: list[str | None] = []
    paths: list[Path] = []
    for row, name in zip(manifest[ROW_COLUMN], manifest["file"].cast(pl.String), strict=True):
        if name is None or not name.strip():
            log.add(LoadProblem(label, "value is required", row, "file"))
            texts.append(None)
            continue
        try:
            target = (folder / name.strip()).resolve()
        except (ValueError, OSError) as exc:  # e.g. an embedded NUL byte
            log.add(LoadProblem(label, f"'{name}' is not a usable file name: {exc}", row, "file"))
            texts.append(None)
            continue
        if not target.is_relative_to(folder):
            log.add(
                LoadProblem(
                    label,
                    f"'{name}' leads to '{target}', outside the documents folder",
                    row,
                    "file",
                )
            )
            texts.append(None)
            continue
        text, problem = _document_text(target, name)
        if problem is not None:
            log.add(LoadProblem(label, problem, row, "file"))
        else:
            paths.append(target)
        texts.append(text)
    frame = manifest.drop("file").with_columns(pl.Series("text", texts, dtype=pl.String))
    # Rows whose file could not be read are reported already; keep them out of later checks.
    unread = [row for row, text in zip(manifest[ROW_COLUMN], texts, strict=True) if text is None]
    return frame.filter(~pl.col(ROW_COLUMN).is_in(unread)), paths


def _document_text(path: Path, name: str) -> tuple[str | None, str | None]:
    """A document file's text, or why it cannot be loaded (named as the manifest names it)."""
    try:
        kind = special_file_kind(os.stat(path).st_mode)
    except FileNotFoundError:
        return None, f"text file '{name}' not found"
    except OSError as exc:
        return None, f"cannot read '{name}': {exc.strerror or exc}"
    if kind is not None:
        # Never opened: reading a named pipe waits for a writer, a device may never end.
        return None, f"'{name}' is {kind}, not a regular file"
    try:
        # Bytes, not read_text: universal newlines would rewrite the document's line ends.
        data = read_regular_bytes(path)
    except OSError as exc:
        return None, f"cannot read '{name}': {exc.strerror or exc}"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) or data.startswith(
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    ):
        return None, f"'{name}' is UTF-16 (or UTF-32) text; save it as UTF-8"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (
            f"'{name}' is not UTF-8 text (byte 0x{data[exc.start]:02X} at offset {exc.start}); "
            "save it as UTF-8"
        )
    # A byte order mark says how the file is encoded; it is not part of the document.
    return text.removeprefix("\ufeff"), None


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
        known_patients = (
            set(bundle_patients["patient_id"].to_list()) if (bundle_patients is not None) else set()
        )
        known_patients |= {
            r[0]
            for r in con.execute(f"SELECT patient_id FROM patients WHERE {keep}", params).fetchall()
        }
        for table, frame in typed.items():
            spec = BUNDLE_TABLES[table]
            con.register("_incoming", frame.select(ROW_COLUMN, spec.id_column))
            empty = not con.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchall()[0][0]
            clashes = (
                []
                if empty
                else con.execute(
                    f"SELECT i.{ROW_COLUMN}, i.{spec.id_column}, s.name FROM _incoming i "
                    f"JOIN {table} t ON t.{spec.id_column} = i.{spec.id_column} "
                    f"JOIN sources s ON s.source_id = t.source_id WHERE t.{keep} "
                    f"ORDER BY i.{ROW_COLUMN}",
                    params,
                ).fetchall()
            )
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
            # Compare the (few) distinct patient ids; rows are looked up only when some are unknown.
            referenced = set(frame["patient_id"].unique().drop_nulls().to_list())
            unknown = referenced - known_patients
            orphans = (
                frame.filter(pl.col("patient_id").is_in(list(unknown)))
                .select(ROW_COLUMN, "patient_id")
                .sort(ROW_COLUMN)
                .rows()
                if unknown
                else []
            )
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


def _write_tables(
    write: SourceWrite, typed: dict[str, pl.DataFrame], progress: LoadProgress
) -> None:
    """Insert the bundle's tables under the load's source (inside its transaction)."""
    tables = [t for t in _TABLE_ORDER if t in typed]
    for i, table in enumerate(tables):
        progress("write", i, len(tables))
        frame = typed[table].select(BUNDLE_TABLES[table].column_names)
        insert_frame(write.con, table, clustered_by_patient(frame), write.source_id)
        write.counts[table] = frame.height
    progress("write", len(tables), len(tables))
