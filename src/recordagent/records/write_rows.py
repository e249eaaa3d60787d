"""Writing rows into the store inside a load's transaction: tables, chunks and search terms."""

from __future__ import annotations

import duckdb
import polars as pl

from recordagent.records.chunking import Chunker
from recordagent.records.load_report import LoadProgress, no_progress
from recordagent.records.search_index import build_index_rows, insert_index
from recordagent.records.terms import Vocabulary

__all__ = ["chunk_documents", "clustered_by_patient", "index_documents", "insert_frame"]

_CHUNK_SCHEMA = {
    "chunk_id": pl.String,
    "document_id": pl.String,
    "patient_id": pl.String,
    "position": pl.Int32,
    "section": pl.String,
    "char_start": pl.Int32,
    "char_end": pl.Int32,
    "token_count": pl.Int32,
}


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


def clustered_by_patient(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows grouped by patient, so DuckDB's per-row-group min/max prune per-patient reads."""
    in_order = frame.select(
        (pl.col("patient_id") >= pl.col("patient_id").shift(1)).all(ignore_nulls=True)
    ).item()
    return frame if in_order else frame.sort("patient_id", maintain_order=True)


def chunk_documents(
    chunker: Chunker, documents: pl.DataFrame | None, progress: LoadProgress
) -> tuple[pl.DataFrame, int]:
    """Chunk every document; returns the chunks table (offsets only) and the total tokens."""
    if documents is None or documents.height == 0:
        return pl.DataFrame(schema=_CHUNK_SCHEMA), 0
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
    return chunks.select(list(_CHUNK_SCHEMA)), sum(r.total_tokens for r in results)


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
        chunker, documents.select("document_id", "patient_id", "text"), no_progress
    )
    terms = build_index_rows(chunks, documents.select("document_id", "text"), vocabulary)
    insert_frame(con, "chunks", chunks, source_id)
    insert_index(con, terms, source_id, vocabulary, record_vocabulary=False)
    return chunks.height, tokens
