"""The lexical search index: term frequencies per chunk, kept in the store beside the chunks.

Search ranks a patient's chunks with BM25 computed in SQL over ``chunk_terms`` (see
:mod:`recordagent.tools.search`). The index is built while loading, in the load's transaction,
and records which vocabulary built it.
"""

from __future__ import annotations

import contextlib

import duckdb
import numpy as np
import polars as pl

from recordagent.records.terms import Vocabulary, load_vocabulary, text_terms

__all__ = [
    "build_index_rows",
    "index_missing_sources",
    "insert_index",
    "record_index_vocabulary",
]


def build_index_rows(
    chunks: pl.DataFrame, documents: pl.DataFrame, vocabulary: Vocabulary
) -> pl.DataFrame:
    """Term rows: patient_id, chunk_id, term, tf, and n_terms (the chunk's length in terms).

    ``chunks`` needs chunk_id, document_id, patient_id, char_start, char_end; ``documents``
    needs document_id and text.
    """
    if chunks.height == 0:
        empty = pl.DataFrame(
            schema={
                "patient_id": pl.String,
                "chunk_id": pl.String,
                "term": pl.String,
                "tf": pl.Int32,
                "n_terms": pl.Int32,
            }
        )
        return empty
    texts = (
        chunks.select("document_id", "char_start", "char_end")
        .join(
            documents.select("document_id", "text"),
            on="document_id",
            how="left",
            maintain_order="left",
        )
        .select(
            pl.col("text").str.slice(
                pl.col("char_start"), pl.col("char_end") - pl.col("char_start")
            )
        )
        .to_series()
    )
    # Chunks come clustered by patient, so ordering terms by chunk row keeps them clustered
    # (an integer sort, not a sort on strings).
    terms = text_terms(texts, vocabulary).sort("row")
    rows = terms["row"]
    lengths = terms.group_by("row").agg(pl.col("tf").sum())
    n_terms = np.zeros(chunks.height, dtype=np.int32)
    n_terms[lengths["row"].to_numpy()] = lengths["tf"].to_numpy()
    # Each row carries its chunk's length, so BM25 needs no join back to the chunks.
    index_rows = pl.DataFrame(
        {
            "patient_id": chunks["patient_id"].gather(rows),
            "chunk_id": chunks["chunk_id"].gather(rows),
            "term": terms["term"],
            "tf": terms["tf"],
            "n_terms": pl.Series(n_terms).gather(rows),
        }
    )
    return index_rows


def index_missing_sources(con: duckdb.DuckDBPyConnection) -> int:
    """Index every source without an up-to-date index (older stores, or a changed vocabulary).

    Returns the number of sources indexed.
    """
    vocabulary = load_vocabulary()
    # Sources never indexed, or indexed with another vocabulary (its concepts would be stale).
    missing = [
        r[0]
        for r in con.execute(
            "SELECT s.source_id FROM sources s LEFT JOIN search_index i USING (source_id) "
            "WHERE i.vocabulary IS DISTINCT FROM $v ORDER BY s.source_id",
            {"v": vocabulary.digest},
        ).fetchall()
    ]
    if not missing:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        for source_id in missing:
            params = {"s": source_id}
            con.execute("DELETE FROM chunk_terms WHERE source_id = $s", params)
            con.execute("DELETE FROM search_index WHERE source_id = $s", params)
            chunks = con.sql(
                "SELECT chunk_id, document_id, patient_id, char_start, char_end FROM chunks "
                "WHERE source_id = $s ORDER BY patient_id, chunk_id",
                params=params,
            ).pl()
            documents = con.sql(
                "SELECT document_id, text FROM documents WHERE source_id = $s", params=params
            ).pl()
            insert_index(
                con, build_index_rows(chunks, documents, vocabulary), source_id, vocabulary
            )
        con.execute("COMMIT")
    except BaseException:
        # A failed rollback (the transaction already aborted) must not hide the first error.
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    return len(missing)


def insert_index(
    con: duckdb.DuckDBPyConnection,
    rows: pl.DataFrame,
    source_id: int,
    vocabulary: Vocabulary,
    *,
    record_vocabulary: bool = True,
) -> None:
    """Write a source's term rows and record the vocabulary (inside the caller's transaction).

    A source indexed in batches records the vocabulary once: on its last batch, or alone with
    empty ``rows``.
    """
    con.register("_terms", rows.to_arrow())
    try:
        con.execute(
            "INSERT INTO chunk_terms SELECT patient_id, chunk_id, term, tf, n_terms, $s "
            "FROM _terms",
            {"s": source_id},
        )
    finally:
        con.unregister("_terms")
    if record_vocabulary:
        record_index_vocabulary(con, source_id, vocabulary)


def record_index_vocabulary(
    con: duckdb.DuckDBPyConnection, source_id: int, vocabulary: Vocabulary
) -> None:
    """Record which vocabulary a source's term rows were built with (once per source)."""
    con.execute(
        "INSERT INTO search_index VALUES ($s, $v)", {"s": source_id, "v": vocabulary.digest}
    )
