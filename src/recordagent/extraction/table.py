"""The extraction's results table: one row per patient × question × slot, with cited excerpts.

Built from the run log's records (:func:`~recordagent.evaluation.results_table.records_frame`
gives the answer, status, tokens, cost and latency columns) plus what a reviewer needs beside
each value: the slot values the question showed and, for every citation, a short excerpt of the
cited row read through the patient's scope (a lab value with its unit and time, an event with
its dates, the cited passage of a document). The run log keeps ids only; this table is the
deliverable, and holds record text in its excerpts: store it as the records themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import polars as pl

from recordagent.evaluation.audit import PatientRows
from recordagent.evaluation.log import RunManifest, RunRecord
from recordagent.evaluation.results_table import ResultColumn, records_frame
from recordagent.records.db import RecordStore
from recordagent.runners import Citation

__all__ = ["EXCERPT_CHARS", "EXTRACTION_COLUMNS", "cited_excerpt", "extraction_frame"]

EXCERPT_CHARS = 240
"""The longest excerpt of a cited row, in characters (whole words, an ellipsis when cut)."""

_TEXT, _INT, _FLOAT, _BOOL = pl.String(), pl.Int64(), pl.Float64(), pl.Boolean()
_CITED = pl.List(pl.Struct({"id": _TEXT, "kind": _TEXT, "excerpt": _TEXT}))


def _col(name: str, dtype: pl.DataType, description: str) -> ResultColumn:
    return ResultColumn(name, dtype, description)


EXTRACTION_COLUMNS: tuple[ResultColumn, ...] = (
    _col("run_id", _TEXT, "The extraction run's id (kept when it is resumed)."),
    _col("patient_id", _TEXT, "The patient."),
    _col("item_id", _TEXT, "The item: '<template>/<patient>' or an ad-hoc digest."),
    _col("template_id", _TEXT, "The template the question came from; null for a question."),
    _col("level", _INT, "The template's level (1 fact, 2 temporal, 3 criteria)."),
    _col("question", _TEXT, "The question as asked, slots filled in."),
    _col("slots", _TEXT, "The slot values the question shows, as a JSON object ({} if none)."),
    _col("answer_type", _TEXT, "date, number, count, boolean, category, list or text."),
    _col("unit", _TEXT, "The unit a number is asked in, if any."),
    _col("as_of", pl.Date(), "The day the question is asked as of; null for the whole record."),
    _col(
        "status",
        _TEXT,
        "answered, unanswerable (the record does not say), insufficient_evidence, or failed.",
    ),
    _col("value", _TEXT, "The value as JSON text (json.loads gives it back); null if none."),
    _col("value_text", _TEXT, "The value as readable text: 2020-06-15, 1.5, true, a; b."),
    _col("text", _TEXT, "The answer in words."),
    _col("citations", pl.List(_TEXT), "The record rows cited, each as 'kind:id' (lab:L-12)."),
    _col(
        "cited",
        _CITED,
        "Each citation with a short excerpt of the cited row (at most EXCERPT_CHARS "
        "characters; null when the id is not in the patient's record).",
    ),
    _col("failure", _TEXT, "Why a failed answer failed (timeout, rate_limited, …); else null."),
    _col("error", _TEXT, "The exception kind of an item that failed by a bug; else null."),
    _col("prompt_tokens", _INT, "Prompt tokens of all the item's model calls."),
    _col("completion_tokens", _INT, "Completion tokens of all the item's model calls."),
    _col("total_tokens", _INT, "Prompt plus completion tokens."),
    _col("cost_usd", _FLOAT, "What the item cost in dollars; null for an unpriced model."),
    _col("latency_s", _FLOAT, "Wall time of answering the item, in seconds."),
    _col("model_calls", _INT, "Model calls made for the item."),
    _col("runner", _TEXT, "The runner that answered."),
    _col("model", _TEXT, "The model that answered."),
    _col("mock", _BOOL, "True when a scripted mock answered: the row says nothing of a model."),
    _col("prompt_version", _TEXT, "The runner's prompt version."),
)
"""Every column of the extraction table, in order, with its type and meaning."""


def extraction_frame(
    records: Sequence[RunRecord],
    manifest: RunManifest,
    store: RecordStore,
    *,
    slots: Mapping[str, Mapping[str, str]] | None = None,
) -> pl.DataFrame:
    """The extraction table of ``records``, in their order, with cited excerpts from ``store``."""
    base = records_frame(records, manifest=manifest)
    shown = slots or {}
    cited = _cited(records, store)
    extra = pl.DataFrame(
        {
            "slots": [
                json.dumps(dict(shown.get(r.item.id, {})), ensure_ascii=False) for r in records
            ],
            "cited": cited,
        },
        schema={"slots": _TEXT, "cited": _CITED},
    )
    frame = pl.concat([base, extra], how="horizontal")
    return frame.select([pl.col(c.name).cast(c.dtype) for c in EXTRACTION_COLUMNS])


def _cited(records: Sequence[RunRecord], store: RecordStore) -> list[list[dict[str, str | None]]]:
    """Each record's citations with their excerpts, reading each patient's record once."""
    by_patient: dict[str, PatientRows] = {}
    out: list[list[dict[str, str | None]]] = []
    for record in records:
        citations = record.answer.citations
        if not citations:
            out.append([])
            continue
        patient = record.item.patient_id
        if patient not in by_patient:
            by_patient[patient] = PatientRows(store.scope(patient))
        rows = by_patient[patient]
        out.append(
            [{"id": c.id, "kind": c.kind, "excerpt": cited_excerpt(rows, c)} for c in citations]
        )
    return out


def cited_excerpt(rows: PatientRows, citation: Citation, limit: int = EXCERPT_CHARS) -> str | None:
    """A short excerpt of the cited row; None when the patient's record has no such row."""
    if citation.kind == "lab":
        lab = rows.labs.get(citation.id)
        if lab is None:
            return None
        value = lab.value_text if lab.value_num is None else f"{lab.value_num:g}"
        unit = f" {lab.unit}" if lab.unit else ""
        return _cut(f"{lab.analyte_name} {value}{unit} ({lab.time:%Y-%m-%d %H:%M})", limit)
    if citation.kind == "event":
        event = rows.events.get(citation.id)
        if event is None:
            return None
        until = f" to {event.end_time:%Y-%m-%d}" if event.end_time else ""
        detail = f": {event.detail}" if event.detail else ""
        return _cut(
            f"{event.kind} {event.label} ({event.start_time:%Y-%m-%d}{until}){detail}", limit
        )
    if citation.kind == "chunk":
        chunk = rows.chunk(citation.id)
        return None if chunk is None else _cut(chunk.text, limit)
    document = rows.document(citation.id)
    return None if document is None else _cut(document.text, limit)


def _cut(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary within ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"
