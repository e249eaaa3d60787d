"""MIMIC-IV-Note: discharge summaries and radiology reports as documents, chunked in batches.

Notes are the one part of MIMIC that passes through Python (the chunker and the search index
are Python). They are read in batches of ``batch_rows`` from a connection of their own, so a
full MIMIC-IV-Note (about 2.6 M notes) never sits in memory at once; each batch is written,
chunked and indexed inside the store's load transaction.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import polars as pl

from recordagent.records.chunking import Chunker
from recordagent.records.load_report import LoadProgress
from recordagent.records.search_index import record_index_vocabulary
from recordagent.records.terms import Vocabulary
from recordagent.records.write_rows import index_documents, insert_frame
from recordagent.sources.mimic_iv.files import MimicFiles
from recordagent.sources.mimic_iv.tables import read_table

__all__ = ["NOTE_TYPES", "load_notes", "notes_sql"]

NOTE_TYPES = {
    "DS": "discharge summary",
    "DA": "discharge summary addendum",
    "RR": "radiology report",
    "AR": "radiology addendum",
}

_NOTE_COLUMNS = {
    "note_id": "VARCHAR",
    "subject_id": "BIGINT",
    "note_type": "VARCHAR",
    "charttime": "TIMESTAMP",
    "text": "VARCHAR",
}


def notes_sql(files: MimicFiles) -> str | None:
    """One SELECT over the note files present, grouped by patient; None without notes."""
    parts = []
    kinds = " ".join(f"WHEN '{code}' THEN '{name}'" for code, name in NOTE_TYPES.items())
    for table in ("discharge", "radiology"):
        if not files.has(table):
            continue
        title = "NULL"
        join = ""
        if table == "radiology" and files.has("radiology_detail"):
            detail = read_table(
                files,
                "radiology_detail",
                {
                    "note_id": "VARCHAR",
                    "field_name": "VARCHAR",
                    "field_value": "VARCHAR",
                    "field_ordinal": "BIGINT",
                },
            )
            join = (
                "LEFT JOIN (SELECT note_id, arg_min(field_value, field_ordinal) AS exam "
                f"FROM {detail} WHERE field_name = 'exam_name' GROUP BY note_id) x "
                "ON x.note_id = n.note_id"
            )
            title = "x.exam"
        parts.append(
            f"""
            SELECT n.note_id AS document_id, CAST(n.subject_id AS VARCHAR) AS patient_id,
                   n.charttime AS date,
                   CASE n.note_type {kinds} ELSE lower(n.note_type) END AS type,
                   coalesce({title}, CASE n.note_type {kinds} ELSE lower(n.note_type) END)
                       AS title,
                   n.text AS text
            FROM {read_table(files, table, _NOTE_COLUMNS)} n
            {join}
            WHERE n.charttime IS NOT NULL AND trim(coalesce(n.text, '')) <> ''
            """
        )
    if not parts:
        return None
    return " UNION ALL ".join(parts)


def _count(sql: str, threads: int | None) -> int:
    reader = duckdb.connect()
    try:
        if threads is not None:
            reader.execute(f"SET threads = {int(threads)}")
        rows = reader.execute(f"SELECT count(*) FROM ({sql})").fetchall()
    finally:
        reader.close()
    return int(rows[0][0]) if rows else 0


def _batches(sql: str, batch_rows: int, threads: int | None) -> Iterator[pl.DataFrame]:
    reader = duckdb.connect()  # a connection of its own: the store's is inside a transaction
    try:
        if threads is not None:
            reader.execute(f"SET threads = {int(threads)}")
        # Grouped by patient, so the chunk and term rows stay clustered for per-patient reads.
        ordered = f"SELECT * FROM ({sql}) ORDER BY patient_id, date, document_id"
        batches = reader.sql(ordered).to_arrow_reader(batch_rows)
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame
    finally:
        reader.close()


def load_notes(
    con: duckdb.DuckDBPyConnection,
    files: MimicFiles,
    source_id: int,
    chunker: Chunker,
    vocabulary: Vocabulary,
    progress: LoadProgress,
    *,
    batch_rows: int = 20_000,
    threads: int | None = None,
) -> tuple[int, int, int]:
    """Write, chunk and index every note (inside the caller's transaction).

    Returns:
        Documents, chunks and document tokens written.
    """
    sql = notes_sql(files)
    documents = chunks_written = tokens = 0
    if sql is not None:
        total = _count(sql, threads)
        progress("notes", 0, total)
        for frame in _batches(sql, batch_rows, threads):
            insert_frame(con, "documents", frame, source_id)
            n_chunks, n_tokens = index_documents(con, frame, source_id, chunker, vocabulary)
            documents += frame.height
            chunks_written += n_chunks
            tokens += n_tokens
            progress("notes", documents, total)
    record_index_vocabulary(con, source_id, vocabulary)
    return documents, chunks_written, tokens
