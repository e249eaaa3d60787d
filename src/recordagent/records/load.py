"""Loading a record bundle into the store: validate everything, chunk, write in one transaction.

Loading is all-or-nothing: every problem is found before anything is written, and the write runs
in a single transaction (:func:`~recordagent.records.source_write.source_write`) that is rolled
back on any failure, so a failed load leaves the store exactly as it was. Loading the same files
again is a no-op (their fingerprint is recorded in ``sources``); ``replace=True`` swaps a
previously loaded source for the new files.

Two opt-ins for exports as they come: ``settings.load.convert_timezone`` converts timestamps
with a UTC offset to a zone's local time (:mod:`recordagent.records.validate`), and
``reject_path`` quarantines invalid rows instead of refusing the bundle: the rows that pass
every check load, the others go to the reject file (:mod:`recordagent.records.rejects`) with
the rows that name a rejected patient. Problems that are not a row's (a missing column, a file
that cannot be read) still stop the load.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from recordagent.errors import DataLoadError, LoadProblem, UserError
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
from recordagent.records.quarantine import quarantined, rejected_per_table
from recordagent.records.rejects import (
    checked_reject_path,
    discard,
    discard_published,
    file_identity,
    publish_rejects,
    stage_rejects,
)
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.search_index import build_index_rows, insert_index
from recordagent.records.source_table import source_name
from recordagent.records.source_write import PhaseClock, SourceWrite, plan_source, source_write
from recordagent.records.store_checks import check_against_store
from recordagent.records.store_file import Pending, after_landing, store_files
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
    reject_path: str | Path | None = None,
) -> LoadReport:
    """Validate a bundle folder and load it into ``store``.

    Args:
        store: The record store to load into.
        path: The bundle folder.
        settings: Chunking and reporting settings, and ``load.convert_timezone`` (the zone
            timestamps with a UTC offset are converted to); defaults when omitted.
        source: Name to register the bundle under; the folder name by default.
        replace: Replace a source of the same name (deleting its rows) instead of refusing.
        progress: Optional progress callback.
        chunker: A chunker to reuse across loads (built from ``settings`` otherwise).
        reject_path: Quarantine invalid rows instead of refusing the bundle: load the valid
            rows and write each invalid one (and each row naming a rejected patient) to this
            CSV file, with file, row, column, reason and the values given. Written whole, and
            only when the load commits (into a store ``open_for_load`` creates: once that store
            has landed); a header alone when no row was rejected. It may not be one of the
            store's files.

    Raises:
        DataLoadError: The bundle is invalid (with ``reject_path``: it has a problem that is
            not a row's, or every row was rejected); nothing was written.
        UserError: The folder is missing, the source name is taken by other files and
            ``replace`` is not set, or the reject file cannot be written where asked.
    """
    settings = settings or Settings()
    zone = settings.load.convert_timezone
    report_progress = progress or no_progress
    clock = PhaseClock()

    with clock("read"):
        files = find_bundle_files(path)
        rejects_to = (
            None
            if reject_path is None
            else checked_reject_path(reject_path, files.root, store_files(store))
        )
        name = source_name(source, files.root.resolve().name)
        all_paths = list(files.tables.values())
        frames: dict[str, pl.DataFrame] = {}
        given: dict[str, pl.DataFrame] = {}  # tables as read, by label, for the reject file
        labels: dict[str, str] = {}
        log = ProblemLog(keep_all=rejects_to is not None)
        if files.documents_manifest is not None:
            manifest_label = files.label(files.documents_manifest)
            frame, manifest, text_paths = _read_document_folder(files, log)
            frames["documents"], labels["documents"] = frame, manifest_label
            given[manifest_label] = manifest
            all_paths += [files.documents_manifest, *text_paths]
        plan = plan_source(
            store,
            name,
            files.root.resolve(),
            _load_fingerprint(fingerprint_files(all_paths, files.root), zone),
            replace=replace,
            what="this bundle",
        )
    if plan.unchanged:
        return plan.report(ignored_files=list(files.ignored))

    with clock("validate"):
        labels.update({table: files.label(file) for table, file in files.tables.items()})
        order = [t for t in BUNDLE_TABLES if t in files.tables or t in frames]

        def read_and_validate(table: str) -> tuple[pl.DataFrame, pl.DataFrame, ProblemLog]:
            frame = (
                frames[table] if table in frames else read_table(files.tables[table], labels[table])
            )
            table_log = ProblemLog(keep_all=log.keep_all)
            typed = validate_table(BUNDLE_TABLES[table], frame, labels[table], table_log, zone=zone)
            return typed, frame, table_log

        typed: dict[str, pl.DataFrame] = {}
        report_progress("validate", 0, len(order))
        # polars releases the GIL, so tables are parsed and checked side by side; problems are
        # merged in table order, so the report does not depend on timing.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done, (table, (frame, read, table_log)) in enumerate(
                zip(order, pool.map(read_and_validate, order), strict=True), start=1
            ):
                typed[table] = frame
                if rejects_to is not None:
                    given.setdefault(labels[table], read)
                log.extend(table_log)
                report_progress("validate", done, len(order))
        rejected: list[LoadProblem] = []
        if rejects_to is not None:
            typed, rejected = quarantined(store, typed, labels, plan.replaced_id, log, settings)
        else:
            if not log:
                check_against_store(store, typed, labels, plan.replaced_id, log)
            if log:
                raise DataLoadError(
                    log.problems[: settings.load.max_reported_problems], total=log.total
                )

    staged: Path | None = None
    published: tuple[int, int] | None = None
    pending: Pending | None = None
    try:
        with clock("chunk"):
            chunker = chunker or Chunker(settings.chunking)  # the tokenizer is chunking work
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
            if rejects_to is not None:
                # Written last and moved into place just before the commit, so a committed load
                # always has its reject file; taken back below if the commit fails. Into a
                # store not created yet, it moves only once that store has landed: a first
                # load that loses the race to create it must not touch the winner's file.
                staged = stage_rejects(rejects_to, rejected, given)
                pending = after_landing(store, _publisher(staged, rejects_to), _discarder(staged))
                if pending is None:
                    # Before the rename: an interrupted one is taken back too.
                    published = file_identity(staged)
                    publish_rejects(staged, rejects_to)
    except BaseException:
        if pending is not None:
            pending.cancel()
        discard(staged)
        if rejects_to is not None:
            discard_published(rejects_to, published)
        raise
    report = plan.report(
        counts=write.counts,
        document_tokens=n_tokens,
        tokenizer=chunker.tokenizer.description,
        ignored_files=list(files.ignored),
        seconds=clock.rounded(),
        warnings=list(log.warnings),
    )
    return report.model_copy(
        update={
            "timezone": zone,
            "converted_timestamps": log.converted_count(leaving_out=rejected),
            "rejected": rejected_per_table(rejected, labels) if rejects_to is not None else {},
            "reject_file": None if rejects_to is None else str(rejects_to),
        }
    )


def _publisher(staged: Path, target: Path) -> Callable[[], None]:
    """Move the staged reject file into place once a first load's store has landed."""

    def publish() -> None:
        try:
            publish_rejects(staged, target)
        except OSError as exc:
            raise UserError(
                "the bundle was loaded into the store, but its reject file could not be moved "
                f"to '{target}' ({exc.strerror or exc}); the rejected rows are in '{staged}'"
            ) from exc

    return publish


def _discarder(staged: Path) -> Callable[[], None]:
    return lambda: discard(staged)


def _load_fingerprint(files_fingerprint: str, zone: str | None) -> str:
    """The files' fingerprint, and the zone they are converted to when one is given.

    The same files converted to another zone are other data: loading them is not a no-op.
    """
    if zone is None:
        return files_fingerprint
    return hashlib.sha256(f"{files_fingerprint}\0convert_timezone={zone}".encode()).hexdigest()


def _read_document_folder(
    files: BundleFiles, log: ProblemLog
) -> tuple[pl.DataFrame, pl.DataFrame, list[Path]]:
    """Read the manifest and each text file it names into a documents frame with ``text``.

    Returns the documents, the manifest as read, and the text files read.
    """
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
    return frame.filter(~pl.col(ROW_COLUMN).is_in(unread)), manifest, paths


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
