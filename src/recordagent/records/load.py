"""Loading a record bundle into the store: validate everything, chunk, write in one transaction.

Loading is all-or-nothing: every problem is found before anything is written, and the write runs
in a single transaction that is rolled back on any failure, so a failed load leaves the store
exactly as it was. Loading the same files again is a no-op (their fingerprint is recorded in
``sources``); ``replace=True`` swaps a previously loaded source for the new files.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    read_regular_bytes,
    read_table,
    special_file_kind,
)
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, first_row, roll_back
from recordagent.records.ids import invisible_character
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.search_index import build_index_rows, insert_index
from recordagent.records.terms import Vocabulary, load_vocabulary
from recordagent.records.validate import ProblemLog, validate_table
from recordagent.settings import Settings

__all__ = [
    "LoadReport",
    "ProgressCallback",
    "chunk_documents",
    "clustered_by_patient",
    "delete_source",
    "index_documents",
    "insert_frame",
    "load_bundle",
    "package_version",
    "register_source",
    "set_source_counts",
    "source_by_name",
    "source_name",
    "source_with_fingerprint",
]

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases: validate, chunk, write."""

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
    warnings: list[str] = Field(
        default_factory=list,
        description="Changes made to values while loading them, with counts: leap seconds "
        "stored as second 59.999999, digits below a microsecond truncated.",
    )
    seconds: dict[str, float] = Field(
        default_factory=dict,
        description="Wall time per phase: read (locate and fingerprint the files), validate "
        "(parse and check every table), chunk (tokenizer included), index (search terms), "
        "write.",
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
    fingerprint = fingerprint_files(all_paths, files.root)

    loaded_as = source_with_fingerprint(store, name, fingerprint)
    if loaded_as is not None and not replace:
        return LoadReport(
            source=loaded_as,
            location=str(files.root.resolve()),
            fingerprint=fingerprint,
            status="unchanged",
            ignored_files=list(files.ignored),
        )
    named = source_by_name(store, name)
    if named is not None and not replace:
        raise UserError(
            f"source '{name}' is already loaded from different files; pass replace to swap it "
            "for this bundle, or load it under another source name"
        )
    replaced_id = named[0] if named is not None else None

    timings["read"] = time.perf_counter() - clock

    clock = time.perf_counter()
    labels.update({table: files.label(file) for table, file in files.tables.items()})
    order = [t for t in BUNDLE_TABLES if t in files.tables or t in frames]

    def read_and_validate(table: str) -> tuple[pl.DataFrame, ProblemLog]:
        frame = frames[table] if table in frames else read_table(files.tables[table], labels[table])
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
        _check_against_store(store, typed, labels, replaced_id, log)
    if log:
        raise DataLoadError(log.problems[: settings.load.max_reported_problems], total=log.total)
    timings["validate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    chunker = chunker or Chunker(settings.chunking)  # loading the tokenizer is chunking work
    chunker_setup = time.perf_counter() - clock
    counts = {t: typed[t].height for t in _TABLE_ORDER if t in typed}
    # A cursor of its own: the load is one transaction (tables, chunking, chunks) whatever
    # transaction the caller may have open on the store's connection.
    con = store.connection.cursor()
    con.execute("BEGIN TRANSACTION")
    try:
        clock = time.perf_counter()
        source_id = _write_tables(
            con, name, files, fingerprint, chunker, typed, replaced_id, report_progress
        )
        timings["write"] = time.perf_counter() - clock

        clock = time.perf_counter()
        chunks, n_tokens = chunk_documents(chunker, typed.get("documents"), report_progress)
        timings["chunk"] = time.perf_counter() - clock + chunker_setup

        clock = time.perf_counter()
        vocabulary = load_vocabulary()
        chunks = clustered_by_patient(chunks)
        documents = typed.get("documents", pl.DataFrame(schema={"document_id": pl.String}))
        terms = build_index_rows(chunks, documents, vocabulary)
        timings["index"] = time.perf_counter() - clock

        clock = time.perf_counter()
        counts["chunks"] = chunks.height
        insert_frame(con, "chunks", chunks, source_id)
        con.execute(
            "UPDATE sources SET n_chunks = $n WHERE source_id = $id",
            {"n": chunks.height, "id": source_id},
        )
        timings["write"] += time.perf_counter() - clock

        clock = time.perf_counter()
        insert_index(con, terms, source_id, vocabulary)
        timings["index"] += time.perf_counter() - clock

        clock = time.perf_counter()
        con.execute("COMMIT")
        timings["write"] += time.perf_counter() - clock
    except duckdb.ConstraintException as exc:
        roll_back(con)
        raise DataLoadError(
            [LoadProblem(files.root.name, f"the store refused the rows: {exc}")]
        ) from exc
    except duckdb.TransactionException as exc:
        roll_back(con)
        raise UserError(
            f"the load conflicts with uncommitted changes to the store ({exc}); commit or roll "
            "them back and load again"
        ) from exc
    except BaseException:
        roll_back(con)
        raise
    finally:
        con.close()
    return LoadReport(
        source=name,
        location=str(files.root.resolve()),
        fingerprint=fingerprint,
        status="replaced" if replaced_id is not None else "loaded",
        counts={t: counts.get(t, 0) for t in (*_TABLE_ORDER, "chunks")},
        document_tokens=n_tokens,
        tokenizer=chunker.tokenizer.description,
        ignored_files=list(files.ignored),
        seconds={k: round(timings[k], 4) for k in ("read", "validate", "chunk", "index", "write")},
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


def source_name(source: str | None, default: str) -> str:
    """The name a load registers under: ``source`` when given, else ``default``.

    Raises:
        UserError: ``source`` is empty, or holds characters no name should (controls,
            invisible format characters, or lone surrogates that are not text at all).
    """
    if source is None:
        return default
    name = source.strip()
    if not name:
        raise UserError("the source name is empty; give a visible name or leave it out")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise UserError(f"the source name {name!r} is not valid UTF-8 text")
    invisible = invisible_character(name)
    if invisible is not None:
        raise UserError(
            f"the source name {name!r} contains the invisible character {invisible}; "
            "give a visible name"
        )
    return name


def source_with_fingerprint(store: RecordStore, name: str, fingerprint: str) -> str | None:
    """Name of a source loaded from exactly these files (preferring ``name``), if any."""
    row = first_row(
        store.connection.execute(
            "SELECT name FROM sources WHERE fingerprint = $f ORDER BY name = $n DESC LIMIT 1",
            {"f": fingerprint, "n": name},
        ).fetchall()
    )
    return str(row[0]) if row else None


def source_by_name(store: RecordStore, name: str) -> tuple[int, str] | None:
    """Id and fingerprint of the source called ``name``, if any."""
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


def chunk_documents(
    chunker: Chunker, documents: pl.DataFrame | None, progress: ProgressCallback
) -> tuple[pl.DataFrame, int]:
    """Chunk every document; returns the chunks table (offsets only) and the total tokens."""
    schema = {
        "chunk_id": pl.String,
        "document_id": pl.String,
        "patient_id": pl.String,
        "position": pl.Int32,
        "section": pl.String,
        "char_start": pl.Int32,
        "char_end": pl.Int32,
        "token_count": pl.Int32,
    }
    if documents is None or documents.height == 0:
        return pl.DataFrame(schema=schema), 0
    total = documents.height
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress("chunk", done, total)

    results = chunker.chunk_many(documents["text"].to_list(), progress=step)
    per_document = [len(r.chunks) for r in results]
    spans = [span for r in results for span in r.chunks]
    columns = list(zip(*spans, strict=True)) if spans else [(), (), (), (), ()]
    positions, starts, ends, counts, sections = columns
    owners = (
        documents.select("document_id", "patient_id")
        .with_columns(pl.Series("n", per_document, dtype=pl.Int64))
        .filter(pl.col("n") > 0)
    )
    repeated = owners.select(pl.col("document_id", "patient_id").repeat_by("n").explode())
    chunks = pl.DataFrame(
        {
            "document_id": repeated["document_id"],
            "patient_id": repeated["patient_id"],
            "position": pl.Series(positions, dtype=pl.Int32),
            "section": pl.Series(sections, dtype=pl.String),
            "char_start": pl.Series(starts, dtype=pl.Int32),
            "char_end": pl.Series(ends, dtype=pl.Int32),
            "token_count": pl.Series(counts, dtype=pl.Int32),
        }
    ).select(
        pl.concat_str(pl.col("document_id"), pl.lit(":"), pl.col("position")).alias("chunk_id"),
        pl.all(),
    )
    return chunks.select(list(schema)), sum(r.total_tokens for r in results)


def _write_tables(
    con: duckdb.DuckDBPyConnection,
    name: str,
    files: BundleFiles,
    fingerprint: str,
    chunker: Chunker,
    typed: dict[str, pl.DataFrame],
    replaced_id: int | None,
    progress: ProgressCallback,
) -> int:
    """Register the source and insert its tables (inside the caller's transaction)."""
    if replaced_id is not None:
        delete_source(con, replaced_id)
    count = {t: frame.height for t, frame in typed.items()}
    source_id = register_source(con, name, files.root.resolve(), fingerprint, chunker, counts=count)
    tables = [t for t in _TABLE_ORDER if t in typed]
    for i, table in enumerate(tables):
        progress("write", i, len(tables))
        frame = typed[table].select(BUNDLE_TABLES[table].column_names)
        insert_frame(con, table, clustered_by_patient(frame), source_id)
    progress("write", len(tables), len(tables))
    return source_id


_SOURCE_TABLES = (
    "chunk_terms",
    "search_index",
    "chunks",
    "events",
    "labs",
    "documents",
    "patients",
    "sources",
)


def delete_source(con: duckdb.DuckDBPyConnection, source_id: int) -> None:
    """Delete every row a source wrote, and the source (inside the caller's transaction)."""
    for table in _SOURCE_TABLES:
        con.execute(f"DELETE FROM {table} WHERE source_id = $s", {"s": source_id})


def register_source(
    con: duckdb.DuckDBPyConnection,
    name: str,
    location: Path,
    fingerprint: str,
    chunker: Chunker,
    counts: dict[str, int],
) -> int:
    """Add a row to ``sources`` (inside the caller's transaction); returns the new source id.

    ``counts`` gives rows per table (patients, documents, labs, events, chunks); a loader that
    learns them only while writing updates the row with :func:`set_source_counts`.
    """
    row = first_row(con.execute("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchall())
    source_id = int(row[0]) if row else 1
    con.execute(
        "INSERT INTO sources VALUES ($id, $name, $loc, $fp, $at, $ver, $tok, $max, 0, 0, 0, 0, 0)",
        {
            "id": source_id,
            "name": name,
            "loc": str(location),
            "fp": fingerprint,
            "at": dt.datetime.now(),
            "ver": package_version(),
            "tok": chunker.tokenizer.description,
            "max": chunker.settings.max_tokens,
        },
    )
    set_source_counts(con, source_id, counts)
    return source_id


def set_source_counts(
    con: duckdb.DuckDBPyConnection, source_id: int, counts: dict[str, int]
) -> None:
    """Record a source's row counts per table (those given; the others keep their value)."""
    for table in ("patients", "documents", "chunks", "labs", "events"):
        if table in counts:
            con.execute(
                f"UPDATE sources SET n_{table} = $n WHERE source_id = $id",
                {"n": counts[table], "id": source_id},
            )


def index_documents(
    con: duckdb.DuckDBPyConnection,
    documents: pl.DataFrame,
    source_id: int,
    chunker: Chunker,
    vocabulary: Vocabulary,
) -> tuple[int, int]:
    """Chunk a batch of documents already written and index their terms (caller's transaction).

    For loaders that write documents in batches; the source's vocabulary is recorded once, at
    the end, with :func:`~recordagent.records.search_index.record_index_vocabulary`.

    Returns:
        Chunks written and document tokens.
    """
    chunks, tokens = chunk_documents(
        chunker, documents.select("document_id", "patient_id", "text"), lambda *_: None
    )
    terms = build_index_rows(chunks, documents.select("document_id", "text"), vocabulary)
    insert_frame(con, "chunks", chunks, source_id)
    insert_index(con, terms, source_id, vocabulary, record_vocabulary=False)
    return chunks.height, tokens


def clustered_by_patient(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows grouped by patient, so DuckDB's per-row-group min/max prune per-patient reads."""
    in_order = frame.select(
        (pl.col("patient_id") >= pl.col("patient_id").shift(1)).all(ignore_nulls=True)
    ).item()
    return frame if in_order else frame.sort("patient_id", maintain_order=True)


def insert_frame(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, source_id: int
) -> None:
    """Insert ``frame``'s columns into ``table`` under ``source_id`` (caller's transaction)."""
    columns = ", ".join(frame.columns)
    # Arrow string views hand polars' strings to DuckDB without a copy.
    con.register("_rows", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        con.execute(
            f"INSERT INTO {table} ({columns}, source_id) SELECT {columns}, $sid FROM _rows",
            {"sid": source_id},
        )
    finally:
        con.unregister("_rows")


def package_version() -> str:
    """The installed recordagent version, recorded with every source."""
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
