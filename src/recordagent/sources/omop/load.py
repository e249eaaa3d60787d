"""Loading an OMOP CDM 5.3 / 5.4 export into the record store: all of it, or nothing.

Every table is read by DuckDB from its CSV file and inserted with one ``INSERT ... SELECT``
(see :mod:`.tables`); notes go through the chunker and the search index. The whole load is one
transaction on a cursor of its own: a bad value, an interruption or a clash with patients
already in the store leaves the store as it was.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import polars as pl

from recordagent.errors import DataLoadError, LoadProblem, UserError
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore, roll_back
from recordagent.records.load import (
    LoadReport,
    ProgressCallback,
    delete_source,
    index_documents,
    insert_frame,
    register_source,
    set_source_counts,
    source_by_name,
    source_name,
    source_with_fingerprint,
)
from recordagent.records.search_index import record_index_vocabulary
from recordagent.records.terms import Vocabulary, load_vocabulary
from recordagent.records.value_rules import stored_value_problems
from recordagent.settings import Settings
from recordagent.sources.csv_errors import csv_problem, value_problems
from recordagent.sources.omop.files import DATABASE_ALIAS, OmopFiles, open_omop_files
from recordagent.sources.omop.tables import (
    CONCEPT_TABLE,
    Step,
    concept_sql,
    event_steps,
    lab_steps,
    note_sql,
    patient_step,
    typed_reads,
)

__all__ = ["load_omop"]

_NOTE_BATCH = 5_000


def load_omop(
    store: RecordStore,
    path: str | Path,
    *,
    settings: Settings | None = None,
    source: str | None = None,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    chunker: Chunker | None = None,
) -> LoadReport:
    """Load the OMOP CDM export at ``path``: CSV files (a folder or a .zip), or a DuckDB file.

    Args:
        store: The record store.
        path: A folder holding the CDM tables as ``PERSON.csv`` / ``person.csv`` etc., a
            zip holding such files, or a DuckDB database holding the CDM tables.
        settings: Chunking settings for notes; defaults when omitted.
        source: Name to register the data under; the folder or file name (without its
            suffix) by default.
        replace: Replace a source of the same name instead of refusing.
        progress: Called as ``progress(phase, done, total)``, one phase per CDM table.
        chunker: A chunker to reuse (built from ``settings`` otherwise).

    Raises:
        UserError: Not an OMOP export (no PERSON table), or the source name is taken by
            other files.
        DataLoadError: A value cannot be read (naming the file, row and column), or the rows
            clash with the store (patients loaded from another source); nothing was written.
    """
    settings = settings or Settings()
    report = progress or (lambda phase, done, total: None)
    origin = Path(path)
    with open_omop_files(origin) as files:
        name = source_name(
            source, origin.resolve().stem if origin.is_file() else origin.resolve().name
        )
        loaded_as = source_with_fingerprint(store, name, files.fingerprint)
        location = str(origin.resolve())
        if loaded_as is not None and not replace:
            return LoadReport(
                source=loaded_as,
                location=location,
                fingerprint=files.fingerprint,
                status="unchanged",
            )
        named = source_by_name(store, name)
        if named is not None and not replace:
            raise UserError(
                f"source '{name}' is already loaded from different files; pass replace to "
                "swap it for these files, or load it under another source name"
            )
        chunker = chunker or Chunker(settings.chunking)
        counts, tokens, timings = _load(
            store, files, name, named, chunker, load_vocabulary(), report
        )
    return LoadReport(
        source=name,
        location=location,
        fingerprint=files.fingerprint,
        status="replaced" if named is not None else "loaded",
        counts=counts,
        document_tokens=tokens,
        tokenizer=chunker.tokenizer.description,
        seconds={k: round(v, 4) for k, v in timings.items()},
    )


def _load(
    store: RecordStore,
    files: OmopFiles,
    name: str,
    named: tuple[int, str] | None,
    chunker: Chunker,
    vocabulary: Vocabulary,
    report: ProgressCallback,
) -> tuple[dict[str, int], int, dict[str, float]]:
    """The load transaction: counts per table, document tokens, seconds per phase."""
    timings = {"read": 0.0, "validate": 0.0, "chunk": 0.0, "index": 0.0, "write": 0.0}
    steps = [patient_step(files), *event_steps(files), *lab_steps(files)]
    counts = {"patients": 0, "documents": 0, "labs": 0, "events": 0, "chunks": 0}
    tokens = 0
    con = store.connection.cursor()
    if files.database is not None:
        literal = str(files.database).replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS {DATABASE_ALIAS} (READ_ONLY)")
    con.execute("BEGIN TRANSACTION")
    try:
        clock = time.perf_counter()
        if named is not None:
            delete_source(con, named[0])
        source_id = register_source(
            con, name, files.origin.resolve(), files.fingerprint, chunker, counts={}
        )
        try:
            con.execute(f"CREATE TEMP TABLE {CONCEPT_TABLE} AS {concept_sql(files)}")
        except duckdb.Error as exc:
            raise DataLoadError([_problem(files, "concept", exc)]) from exc
        timings["read"] = time.perf_counter() - clock
        clock = time.perf_counter()
        _check_patients(con, files)
        for step in steps:
            report(step.source, 0, 1)
            counts[step.table] += _run(con, files, step, source_id)
            report(step.source, 1, 1)
        timings["write"] = time.perf_counter() - clock
        clock = time.perf_counter()
        counts["documents"], counts["chunks"], tokens = _load_notes(
            con, files, source_id, chunker, vocabulary, report
        )
        timings["chunk"] = time.perf_counter() - clock
        clock = time.perf_counter()
        bad = stored_value_problems(con, source_id)
        if bad:
            raise DataLoadError(
                value_problems(bad, typed_reads(files), files.origin.name, _attach(files))
            )
        timings["validate"] = time.perf_counter() - clock
        set_source_counts(con, source_id, counts)
        con.execute(f"DROP TABLE IF EXISTS {CONCEPT_TABLE}")
        con.execute("COMMIT")
    except BaseException:
        roll_back(con)
        raise
    finally:
        if files.database is not None:
            con.execute(f"DETACH DATABASE IF EXISTS {DATABASE_ALIAS}")
        con.close()
    return counts, tokens, timings


def _attach(files: OmopFiles) -> list[str]:
    """What a connection of its own runs to read the export's tables (a database's ATTACH)."""
    if files.database is None:
        return []
    literal = str(files.database).replace("'", "''")
    return [f"ATTACH '{literal}' AS {DATABASE_ALIAS} (READ_ONLY)"]


def _run(con: duckdb.DuckDBPyConnection, files: OmopFiles, step: Step, source_id: int) -> int:
    """Insert one step's rows; the number inserted."""
    columns = ", ".join(step.columns)
    try:
        rows = con.execute(
            f"INSERT INTO {step.table} ({columns}, source_id) "
            f"SELECT *, $source_id FROM ({step.sql})",
            {"source_id": source_id},
        ).fetchall()
    except duckdb.Error as exc:
        raise DataLoadError([_problem(files, step.source, exc)]) from exc
    return int(rows[0][0]) if rows else 0


def _problem(files: OmopFiles, table: str, exc: duckdb.Error) -> LoadProblem:
    """The file, row and column DuckDB names, without the offending line's content.

    A step may read several files (a join with DEATH, say): the file named is the one whose
    path DuckDB's message mentions, else the step's own. In a DuckDB database a cast fails
    without a row: the first value no used column can take is looked up instead.
    """
    message = str(exc)
    if files.database is not None and isinstance(exc, duckdb.ConversionException):
        located = _locate_in_database(files, files.database)
        if located is not None:
            return located
    label = files.labels.get(table, table)
    for other, path in files.paths.items():
        if str(path) in message:
            label = files.labels[other]
            break
    return csv_problem(label, exc)


def _locate_in_database(files: OmopFiles, database: Path) -> LoadProblem | None:
    """The first value of a used database column that does not cast to its type.

    Read on a connection of its own: the loading one is inside a failed transaction.
    """
    with duckdb.connect() as con:
        literal = str(database).replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS {DATABASE_ALIAS} (READ_ONLY)")
        return _first_bad_value(con, files)


def _first_bad_value(con: duckdb.DuckDBPyConnection, files: OmopFiles) -> LoadProblem | None:
    for table, types in files.used.items():
        header = files.columns(table)
        for name, kind in types.items():
            if name not in header:
                continue
            column = f'"{header[name]}"'
            try:
                rows = con.execute(
                    f"SELECT n FROM (SELECT row_number() OVER () AS n, {column} AS v "
                    f"FROM {files.relations[table]}) "
                    f"WHERE v IS NOT NULL AND TRY_CAST(v AS {kind}) IS NULL LIMIT 1"
                ).fetchall()
            except duckdb.Error:
                continue
            if rows:
                return LoadProblem(
                    files.labels[table],
                    f"value is not a valid {kind} for this column",
                    row=int(rows[0][0]),
                    column=header[name],
                )
    return None


def _check_patients(con: duckdb.DuckDBPyConnection, files: OmopFiles) -> None:
    """Refuse patients another source already holds (by name, not by a constraint error)."""
    step = patient_step(files)
    try:
        clash = con.execute(
            "SELECT count(*), min(p.patient_id), any_value(s.name) "
            f"FROM ({step.sql}) n(patient_id) JOIN patients p ON p.patient_id = n.patient_id "
            "JOIN sources s ON s.source_id = p.source_id",
        ).fetchall()
    except duckdb.Error as exc:
        raise DataLoadError([_problem(files, "person", exc)]) from exc
    count, example, other = clash[0]
    if count:
        raise DataLoadError(
            [
                LoadProblem(
                    files.labels["person"],
                    f"{count} patient(s) are already in the store from source '{other}' "
                    f"(e.g. {example}); load into another store or replace that source",
                    column="person_id",
                )
            ]
        )


def _load_notes(
    con: duckdb.DuckDBPyConnection,
    files: OmopFiles,
    source_id: int,
    chunker: Chunker,
    vocabulary: Vocabulary,
    report: ProgressCallback,
) -> tuple[int, int, int]:
    """Write, chunk and index NOTE (inside the caller's transaction): documents, chunks, tokens.

    The notes are read whole (the concept join needs the loading connection, which cannot
    stream while it writes) and chunked in batches of ``_NOTE_BATCH``.
    """
    sql = note_sql(files)
    documents = chunks_written = tokens = 0
    if sql is not None:
        try:
            table = con.sql(
                f"SELECT * FROM ({sql}) ORDER BY patient_id, date, document_id"
            ).to_arrow_table()
        except duckdb.Error as exc:
            raise DataLoadError([_problem(files, "note", exc)]) from exc
        notes = pl.from_arrow(table)
        assert isinstance(notes, pl.DataFrame)
        report("note", 0, notes.height)
        for frame in notes.iter_slices(_NOTE_BATCH):
            insert_frame(con, "documents", frame, source_id)
            n_chunks, n_tokens = index_documents(con, frame, source_id, chunker, vocabulary)
            documents += frame.height
            chunks_written += n_chunks
            tokens += n_tokens
            report("note", documents, notes.height)
    record_index_vocabulary(con, source_id, vocabulary)
    return documents, chunks_written, tokens
