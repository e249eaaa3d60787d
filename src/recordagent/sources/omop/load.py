"""Loading an OMOP CDM 5.3 / 5.4 export into the record store: all of it, or nothing.

Every table is read by DuckDB from its CSV file and inserted with one ``INSERT ... SELECT``
(see :mod:`.tables`); notes go through the chunker and the search index. The whole load is one
transaction (:func:`~recordagent.records.source_write.source_write`): a bad value, an
interruption or a clash with patients already in the store leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.records.chunking import Chunker
from recordagent.records.db import RecordStore
from recordagent.records.load_report import LoadProgress, LoadReport, no_progress
from recordagent.records.search_index import record_index_vocabulary
from recordagent.records.source_table import source_name
from recordagent.records.source_write import PhaseClock, SourceWrite, plan_source, source_write
from recordagent.records.sql_steps import check_patients, run_steps
from recordagent.records.terms import Vocabulary, load_vocabulary
from recordagent.records.value_rules import stored_value_problems
from recordagent.records.write_rows import index_documents, insert_frame
from recordagent.settings import Settings
from recordagent.sources.csv_errors import csv_problem, value_problems
from recordagent.sources.omop.files import DATABASE_ALIAS, OmopFiles, open_omop_files
from recordagent.sources.omop.tables import (
    CONCEPT_TABLE,
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
    progress: LoadProgress | None = None,
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
    report = progress or no_progress
    clock = PhaseClock()
    origin = Path(path)
    with open_omop_files(origin) as files:
        with clock("read"):
            name = source_name(
                source, origin.resolve().stem if origin.is_file() else origin.resolve().name
            )
            plan = plan_source(
                store,
                name,
                origin.resolve(),
                files.fingerprint,
                replace=replace,
                what="these files",
            )
        if plan.unchanged:
            return plan.report()
        chunker = chunker or Chunker(settings.chunking)
        with source_write(
            store, plan, chunker, clock, setup=lambda con: _attached(con, files)
        ) as write:
            tokens = _write(write, files, chunker, clock, report)
    return plan.report(
        counts=write.counts,
        document_tokens=tokens,
        tokenizer=chunker.tokenizer.description,
        seconds=clock.rounded(),
    )


def _write(
    write: SourceWrite,
    files: OmopFiles,
    chunker: Chunker,
    clock: PhaseClock,
    report: LoadProgress,
) -> int:
    """Everything the load writes (inside its transaction); the document tokens."""

    def problem(table: str, exc: duckdb.Error) -> LoadProblem:
        return _problem(files, table, exc)

    patients = patient_step(files)
    steps = [patients, *event_steps(files), *lab_steps(files)]
    with clock("read"):
        try:
            write.con.execute(f"CREATE TEMP TABLE {CONCEPT_TABLE} AS {concept_sql(files)}")
        except duckdb.Error as exc:
            raise DataLoadError([problem("concept", exc)]) from exc
    with clock("write"):
        check_patients(
            write.con, patients, problem, label=files.labels["person"], column="person_id"
        )
        run_steps(write, steps, report, problem)
    with clock("chunk"):
        write.counts["documents"], write.counts["chunks"], tokens = _load_notes(
            write.con, files, write.source_id, chunker, load_vocabulary(), report
        )
    with clock("validate"):
        bad = stored_value_problems(write.con, write.source_id)
        if bad:
            raise DataLoadError(
                value_problems(bad, typed_reads(files), files.origin.name, _attach(files.database))
            )
    write.con.execute(f"DROP TABLE IF EXISTS {CONCEPT_TABLE}")
    return tokens


@contextmanager
def _attached(con: duckdb.DuckDBPyConnection, files: OmopFiles) -> Iterator[None]:
    """The export's DuckDB database attached to the loading cursor (when it is one)."""
    for statement in _attach(files.database):
        con.execute(statement)
    try:
        yield
    finally:
        if files.database is not None:
            con.execute(f"DETACH DATABASE IF EXISTS {DATABASE_ALIAS}")


def _attach(database: Path | None) -> list[str]:
    """What a connection runs to read the export's tables: a database's ATTACH, or nothing."""
    if database is None:
        return []
    literal = str(database).replace("'", "''")
    return [f"ATTACH '{literal}' AS {DATABASE_ALIAS} (READ_ONLY)"]


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
        for statement in _attach(database):
            con.execute(statement)
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


def _load_notes(
    con: duckdb.DuckDBPyConnection,
    files: OmopFiles,
    source_id: int,
    chunker: Chunker,
    vocabulary: Vocabulary,
    report: LoadProgress,
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
