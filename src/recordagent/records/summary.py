"""Store-wide overviews: per-patient record sizes and spans."""

from __future__ import annotations

import polars as pl

from recordagent.records.db import RecordStore
from recordagent.records.frames import query_frame

__all__ = ["patient_summary"]


def patient_summary(store: RecordStore) -> pl.DataFrame:
    """One row per patient: record sizes, document tokens and the span of dated entries.

    Columns: patient_id, sex, birth_date, death_date (dates), documents, chunks, tokens, labs,
    analytes (distinct lab names), events (integers), first_entry, last_entry (dates: the
    first and last dated document, lab or event).
    """
    return query_frame(
        store.connection,
        """
        WITH docs AS (
            SELECT patient_id, count(*) AS documents, min(date) AS first_doc, max(date) AS last_doc
            FROM documents GROUP BY patient_id),
        toks AS (
            SELECT patient_id, count(*) AS chunks, CAST(sum(token_count) AS BIGINT) AS tokens
            FROM chunks GROUP BY patient_id),
        lab AS (
            SELECT patient_id, count(*) AS labs, count(DISTINCT analyte_name) AS analytes,
                   min(time) AS first_lab, max(time) AS last_lab
            FROM labs GROUP BY patient_id),
        ev AS (
            SELECT patient_id, count(*) AS events, min(start_time) AS first_event,
                   max(coalesce(end_time, start_time)) AS last_event
            FROM events GROUP BY patient_id)
        SELECT p.patient_id, p.sex, p.birth_date, p.death_date,
               coalesce(docs.documents, 0) AS documents,
               coalesce(toks.chunks, 0) AS chunks,
               coalesce(toks.tokens, 0) AS tokens,
               coalesce(lab.labs, 0) AS labs,
               coalesce(lab.analytes, 0) AS analytes,
               coalesce(ev.events, 0) AS events,
               CAST(least(first_doc, first_lab, first_event) AS DATE) AS first_entry,
               CAST(greatest(last_doc, last_lab, last_event) AS DATE) AS last_entry
        FROM patients p
        LEFT JOIN docs USING (patient_id) LEFT JOIN toks USING (patient_id)
        LEFT JOIN lab USING (patient_id) LEFT JOIN ev USING (patient_id)
        ORDER BY p.patient_id
        """,
    )
