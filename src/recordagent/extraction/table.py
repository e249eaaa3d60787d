"""The extraction's results table: one row per patient × question × slot, with cited excerpts.

Built from the run log's records (:func:`~recordagent.evaluation.results_table.records_frame`
gives the answer, status, tokens, cost and latency columns) plus what a reviewer needs beside
each value: the slot values the question showed and, for every citation, a short excerpt of the
cited row (a lab value with its unit and time, an event with its dates, the cited passage of a
chunk, the start of a cited document). The run log keeps ids only; this table is the
deliverable, and holds record text in its excerpts: store it as the records themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from recordagent.evaluation.log import RunManifest, RunRecord
from recordagent.evaluation.results_table import ResultColumn, records_frame
from recordagent.records.db import RecordStore

__all__ = ["EXCERPT_CHARS", "EXTRACTION_COLUMNS", "extraction_frame"]

EXCERPT_CHARS = 240
"""The longest excerpt of a cited row, in characters (whole words, an ellipsis when cut)."""

_TEXT, _INT, _FLOAT, _BOOL = pl.String(), pl.Int64(), pl.Float64(), pl.Boolean()
_CITED = pl.List(pl.Struct({"id": _TEXT, "kind": _TEXT, "excerpt": _TEXT}))


_col = ResultColumn

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


# Every citation of the table in one statement per kind: (n, patient, id) rows joined to the
# record tables by patient and id, so an id can only name a row of the item's own patient.
_WANTED = "(SELECT unnest($n) AS n, unnest($patient) AS patient_id, unnest($id) AS id) w"
_EXCERPT_SQL = {
    "lab": f"""SELECT w.n, l.analyte_name, l.value_num, l.value_text, l.unit, l.time
        FROM {_WANTED} JOIN labs l ON l.patient_id = w.patient_id AND l.lab_id = w.id""",
    "event": f"""SELECT w.n, e.kind, e.label, e.start_time, e.end_time, e.detail
        FROM {_WANTED} JOIN events e ON e.patient_id = w.patient_id AND e.event_id = w.id""",
    "document": f"""SELECT w.n, substr(d.text, 1, $chars)
        FROM {_WANTED} JOIN documents d
        ON d.patient_id = w.patient_id AND d.document_id = w.id""",
    "chunk": f"""SELECT w.n,
        substr(d.text, c.char_start + 1, least(c.char_end - c.char_start, $chars))
        FROM {_WANTED} JOIN chunks c ON c.patient_id = w.patient_id AND c.chunk_id = w.id
        JOIN documents d ON d.patient_id = c.patient_id AND d.document_id = c.document_id""",
}


def _cited(records: Sequence[RunRecord], store: RecordStore) -> list[list[dict[str, str | None]]]:
    """Each record's citations with their excerpts (None where the patient has no such row)."""
    wanted: dict[str, tuple[list[int], list[str], list[str]]] = {
        kind: ([], [], []) for kind in _EXCERPT_SQL
    }
    cells: list[list[dict[str, str | None]]] = []
    n = 0
    for record in records:
        row: list[dict[str, str | None]] = []
        for citation in record.answer.citations:
            numbers, patients, ids = wanted[citation.kind]
            numbers.append(n)
            patients.append(record.item.patient_id)
            ids.append(citation.id)
            row.append({"id": citation.id, "kind": citation.kind, "excerpt": None})
            n += 1
        cells.append(row)
    excerpts: dict[int, str] = {}
    with store.connection.cursor() as cursor:
        for kind, (numbers, patients, ids) in wanted.items():
            if not numbers:
                continue
            params: dict[str, object] = {"n": numbers, "patient": patients, "id": ids}
            if kind in ("document", "chunk"):
                params["chars"] = 2 * EXCERPT_CHARS
            for found in cursor.execute(_EXCERPT_SQL[kind], params).fetchall():
                excerpts.setdefault(found[0], _cut(_excerpt(kind, found[1:]), EXCERPT_CHARS))
    flat = (cell for row in cells for cell in row)
    for number, cell in enumerate(flat):
        cell["excerpt"] = excerpts.get(number)
    return cells


def _excerpt(kind: str, row: tuple[Any, ...]) -> str:
    """The words of one cited row."""
    if kind == "lab":
        name, value_num, value_text, unit, time = row
        value = value_text if value_num is None else f"{value_num:g}"
        return f"{name} {value}{f' {unit}' if unit else ''} ({time:%Y-%m-%d %H:%M})"
    if kind == "event":
        event_kind, label, start, end, detail = row
        until = f" to {end:%Y-%m-%d}" if end else ""
        return f"{event_kind} {label} ({start:%Y-%m-%d}{until}){f': {detail}' if detail else ''}"
    return str(row[0])


def _cut(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary within ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"
