"""Per-item results as a polars DataFrame: one row per item and runner, typed columns.

:func:`results` reads run logs (paths, open :class:`RunLog` objects, or what :meth:`RunLog.read`
returns) into one frame for analysis; :func:`write_results` writes a frame as Parquet, CSV,
JSONL or JSON, chosen by the file's suffix. :data:`RESULT_COLUMNS` names, types and describes
every column, in order: the documentation's column table is made from it
(:func:`columns_markdown`).

Values of different answer types (dates, numbers, lists, text) cannot share one typed column,
so an answer's value and its reference each come twice: as JSON text (``value``,
``reference``: ``json.loads`` gives the value back, dates as ISO strings) and as readable text
(``value_text``, ``reference_text``: ``2020-06-15``, ``1.5``, ``true``, ``a; b``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from recordagent.errors import UserError
from recordagent.evaluation.labels import Label, ReferenceLabel, read_labels, reference_labels
from recordagent.evaluation.log import RunLog, RunManifest, RunRecord
from recordagent.evaluation.scorers import Score, score_answer
from recordagent.paths import path_kind, replace_file, same_file, shown

__all__ = [
    "LIST_SEPARATOR",
    "RESULT_COLUMNS",
    "RESULT_FORMATS",
    "ResultColumn",
    "RunSource",
    "columns_markdown",
    "frame_bytes",
    "records_frame",
    "results",
    "write_results",
]

RunSource = str | Path | RunLog | tuple[RunManifest, Sequence[RunRecord]]
"""One run as :func:`results` takes it: a log's path, an open log, or ``RunLog.read(path)``."""

LabelSource = str | Path | Iterable[Label] | Mapping[str, ReferenceLabel]
"""Labels as :func:`results` takes them: a labels file, labels, or references by item id."""

LIST_SEPARATOR = ";"
"""What joins a list cell (citations) in CSV, which cannot hold lists."""

RESULT_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "json"}
"""File suffixes :func:`write_results` writes, and the format each stands for."""


@dataclass(frozen=True)
class ResultColumn:
    """One column of the results frame."""

    name: str
    dtype: pl.DataType
    description: str


def _col(name: str, dtype: pl.DataType, description: str) -> ResultColumn:
    return ResultColumn(name, dtype, description)


_TEXT, _INT, _FLOAT, _BOOL = pl.String(), pl.Int64(), pl.Float64(), pl.Boolean()

RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    _col(
        "run_id",
        _TEXT,
        "The run's id (its manifest's run_id, kept when a run is resumed); null for answers "
        "not from a run log.",
    ),
    _col("log", _TEXT, "The run log file the row was read from; null for a log given as read."),
    _col("runner", _TEXT, "The registered runner name."),
    _col("model", _TEXT, "The model the run was on."),
    _col("mock", _BOOL, "True when a scripted mock answered: the row says nothing of a model."),
    _col("prompt_version", _TEXT, "Version of the runner's prompts."),
    _col("item_id", _TEXT, "The item's id."),
    _col("patient_id", _TEXT, "The patient the question is about."),
    _col("template_id", _TEXT, "The question template the item came from; null: none."),
    _col("level", pl.Int8(), "1 fact retrieval, 2 temporal / aggregation, 3 criteria synthesis."),
    _col("question", _TEXT, "The question as the runner received it."),
    _col("answer_type", _TEXT, "date, number, count, boolean, category, list or text."),
    _col("unit", _TEXT, "For numbers: the unit the answer is given in."),
    _col("as_of", pl.Date(), "The day the record was read as of; null: the whole record."),
    _col("status", _TEXT, "answered, insufficient_evidence, truncated or failed."),
    _col(
        "failure",
        _TEXT,
        "Why the model failed the item (timeout, context_overflow, ...); null when it did not.",
    ),
    _col(
        "error",
        _TEXT,
        "The kind of unexpected exception (a bug) that failed the item; null when none did.",
    ),
    _col("value", _TEXT, "The answer's value as JSON text (dates as ISO strings); null: none."),
    _col("value_text", _TEXT, "The value as readable text; list items joined with '; '."),
    _col(
        "reference",
        _TEXT,
        "The reference value as JSON text, from the labels given; null without a reference "
        "label or when the record does not say (reference_source tells which).",
    ),
    _col("reference_text", _TEXT, "The reference value as readable text."),
    _col(
        "reference_source",
        _TEXT,
        "adjudicated, agreed or single; null: no labels given or the item has no reference.",
    ),
    _col(
        "score",
        _TEXT,
        "correct, incorrect or ungraded (not counted either way); null: the answer is unscored.",
    ),
    _col("correct", _BOOL, "True or false when graded; null when ungraded or unscored."),
    _col("scorer", _TEXT, "The rule that decided the score (date, list-f1, failed, judge, ...)."),
    _col("explanation", _TEXT, "The scorer's one line: '<answer> vs <reference>: why'."),
    _col("text", _TEXT, "The answer in words."),
    _col("citations", pl.List(_TEXT), "The record rows cited, each as 'kind:id' (lab:L-12)."),
    _col("prompt_tokens", _INT, "Prompt tokens of all the item's model calls."),
    _col("completion_tokens", _INT, "Completion tokens of all the item's model calls."),
    _col("total_tokens", _INT, "Prompt plus completion tokens."),
    _col("tokens_reported", _BOOL, "False if any count was made locally, not by the server."),
    _col("cost_usd", _FLOAT, "What the item cost in dollars; null for an unpriced model."),
    _col("latency_s", _FLOAT, "Wall time of answering the item, in seconds."),
    _col("model_s", _FLOAT, "Seconds of that spent waiting on the model."),
    _col("model_calls", _INT, "Model calls the runner made."),
    _col("requests", _INT, "HTTP requests those calls took, retries and repairs included."),
    _col("tool_calls", _INT, "Tool calls the runner made."),
    _col("max_prompt_tokens", _INT, "The largest single prompt, in tokens."),
    _col("record_tokens", _INT, "Tokens in the patient's record (chunks)."),
    _col("record_documents", _INT, "Documents in the patient's record."),
)

_SCHEMA = {c.name: c.dtype for c in RESULT_COLUMNS}


def results(
    run_logs: RunSource | Iterable[RunSource],
    *,
    labels: LabelSource | None = None,
    rescore: bool | None = None,
) -> pl.DataFrame:
    """Per-item results of run logs: one row per item and run, columns of :data:`RESULT_COLUMNS`.

    Rows come run by run in the order given, each run's items in the order they were answered.
    Several logs are several runs (one per runner, or the same runner on several models): tell
    them apart by ``run_id``, ``runner`` and ``model``. ``frame.to_pandas()`` gives a pandas
    DataFrame when pandas is installed (``pip install pandas``; pyarrow comes with recordagent).

    Args:
        run_logs: A run log or several: paths, open :class:`RunLog` objects, or the
            ``(manifest, records)`` pairs :meth:`RunLog.read` returns.
        labels: Reference labels: a labels file (.csv, .jsonl, .parquet), labels, or
            references by item id. They fill ``reference`` and every answer is scored again
            against them (as ``recordagent report --labels`` does), without calling any
            model; an item without a reference is then ungraded. Without labels the scores
            are those stored in the logs and the reference columns are null.
        rescore: None (the default): score again exactly when ``labels`` are given. True
            without labels, or False with them, is refused: either would give rows whose
            score was not made against the reference beside it.

    Raises:
        UserError: A log is missing, unreadable or not a run log (the message names the file
            and line), or the labels file is; ``rescore=True`` without ``labels``, or
            ``rescore=False`` with them.
    """
    if rescore is None:
        rescore = labels is not None
    if rescore and labels is None:
        raise UserError("rescore needs labels (the reference labels to score against)")
    if not rescore and labels is not None:
        # The stored scores were made against the labels of the run, which need not be these:
        # a row would show one reference beside a score made against another.
        raise UserError(
            "labels with rescore=False would put references beside scores made against other "
            "labels; leave out labels for the scores stored in the logs"
        )
    runs = [_read(source) for source in _sources(run_logs)]
    references = None
    if labels is not None:
        items = {r.item.id: r.item for _, _, records in runs for r in records}
        references = _references(labels, items)
    columns = _empty_columns()
    for log, manifest, records in runs:
        _add_rows(columns, records, manifest, log, references, rescore=rescore)
    return pl.DataFrame(columns, schema=_SCHEMA)


def records_frame(
    records: Iterable[RunRecord],
    *,
    manifest: RunManifest | None = None,
    log: str | Path | None = None,
) -> pl.DataFrame:
    """Run records (answers not read from a log, for one) as the frame :func:`results` makes.

    Without the run's ``manifest``, ``run_id`` is null and runner, model, mock and prompt
    version are each answer's own. The scores are those the records hold.
    """
    columns = _empty_columns()
    _add_rows(columns, records, manifest, None if log is None else str(log), None, rescore=False)
    return pl.DataFrame(columns, schema=_SCHEMA)


def write_results(
    frame: pl.DataFrame,
    path: str | Path,
    *,
    format: str | None = None,
    keep: Iterable[str | Path] = (),
) -> Path:
    """Write ``frame`` to ``path`` in the format its suffix names (or ``format``); return the path.

    ``.parquet`` keeps every type; ``.csv`` joins list cells with ``;`` (CSV cannot hold
    lists); ``.jsonl`` is one JSON object a line, ``.json`` one array of objects; dates are
    ISO strings in text formats. The file is written whole or not at all: it is written beside
    the target under a temporary name and moved into place when complete. Any polars frame
    can be written this way (``recordagent summary`` writes its per-patient frame so).

    A file the results were read from is never replaced: not the run logs named in the
    frame's ``log`` column, nor any file in ``keep`` (the same file by another name, a
    symbolic or hard link, included).

    Args:
        frame: The frame to write.
        path: The file to write.
        format: 'parquet', 'csv', 'jsonl' or 'json'; None: the one the suffix names. A
            format that contradicts the suffix (csv into ``x.parquet``) is refused; a suffix
            that names none (``.txt``) takes any.
        keep: Files that must not be replaced (the labels file the results were scored
            against, for one).

    Raises:
        UserError: An unknown suffix or format, a format the suffix contradicts, a folder at
            ``path``, ``path`` is a run log of the frame or a file in ``keep``, or the file
            cannot be written.
    """
    target = Path(path)
    if path_kind(target, "results file") == "folder":
        raise UserError(f"results file {shown(target)} is a folder; give a file name")
    kind = _format(target, format)
    _refuse_inputs(target, frame, keep)
    replace_file(target, frame_bytes(frame, kind), "results file")
    return target


def frame_bytes(frame: pl.DataFrame, kind: str) -> bytes:
    """``frame`` in ``kind`` ('parquet', 'csv', 'jsonl', 'json') as :func:`write_results` writes.

    Raises:
        ValueError: An unknown kind.
    """
    if kind == "parquet":
        return _parquet(frame)
    if kind == "csv":
        return (
            frame.with_columns(
                pl.col(name).list.join(LIST_SEPARATOR)
                for name, dtype in frame.schema.items()
                if isinstance(dtype, pl.List)
            )
            .write_csv()
            .encode()
        )
    if kind == "jsonl":
        return frame.write_ndjson().encode()
    if kind == "json":
        # polars writes '[{...},{...}]' with no newline: a file and a pipe end with one.
        return frame.write_json().encode() + b"\n"
    raise ValueError(f"unknown results format {kind!r}; one of {sorted(RESULT_FORMATS.values())}")


def columns_markdown(columns: Sequence[ResultColumn] = RESULT_COLUMNS) -> str:
    """``columns`` (default: :data:`RESULT_COLUMNS`) as a Markdown table: name, type, meaning."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for column in columns:
        meaning = column.description.replace("|", "\\|")
        lines.append(f"| `{column.name}` | {_type_name(column.dtype)} | {meaning} |")
    return "\n".join(lines)


# --- reading ---------------------------------------------------------------------------------


def _sources(run_logs: RunSource | Iterable[RunSource]) -> list[RunSource]:
    """One source or several as a list (a path and a read pair are single sources)."""
    if isinstance(run_logs, str | Path | RunLog):
        return [run_logs]
    if isinstance(run_logs, tuple) and len(run_logs) == 2 and isinstance(run_logs[0], RunManifest):
        return [run_logs]
    return list(run_logs)


def _read(source: RunSource) -> tuple[str | None, RunManifest, Sequence[RunRecord]]:
    """The log path (None when given as read), manifest and records of one run."""
    if isinstance(source, RunLog):
        return str(source.path), source.manifest, source.records
    if isinstance(source, tuple):
        manifest, records = source
        return None, manifest, records
    if not isinstance(source, str | Path):
        raise TypeError(
            f"a run log is a path, a RunLog or a (manifest, records) pair, not {type(source)}"
        )
    # A half-written last line (an interrupted run) is left out with a RunLogWarning naming
    # the file and line: the rows read are the complete records.
    manifest, records = RunLog.read(source)
    return str(source), manifest, records


def _references(labels: LabelSource, items: Mapping[str, Any]) -> Mapping[str, ReferenceLabel]:
    if isinstance(labels, str | Path):
        labels = read_labels(Path(labels))
    if isinstance(labels, Mapping):
        return labels
    found, _unresolved = reference_labels(labels, items)
    return found


# --- rows ------------------------------------------------------------------------------------


def _empty_columns() -> dict[str, list[Any]]:
    return {c.name: [] for c in RESULT_COLUMNS}


def _add_rows(
    columns: dict[str, list[Any]],
    records: Iterable[RunRecord],
    manifest: RunManifest | None,
    log: str | None,
    references: Mapping[str, ReferenceLabel] | None,
    *,
    rescore: bool,
) -> None:
    """Append one row per record to ``columns`` (scored again against references if rescore)."""
    for record in records:
        reference = None if references is None else references.get(record.item.id)
        score = (
            score_answer(record.item, record.answer, reference, judge_verdict=record.judge)
            if rescore
            else record.score
        )
        for name, value in _row(log, manifest, record, reference, score).items():
            columns[name].append(value)


def _row(
    log: str | None,
    manifest: RunManifest | None,
    record: RunRecord,
    reference: ReferenceLabel | None,
    score: Score | None,
) -> dict[str, Any]:
    item, answer, usage = record.item, record.answer, record.answer.usage
    return {
        "run_id": None if manifest is None else manifest.run_id,
        "log": log,
        "runner": answer.runner if manifest is None else manifest.runner,
        # 'unknown' on an answer that failed before any model call: the run's model is known.
        "model": answer.model if manifest is None else manifest.model,
        "mock": answer.mock or (manifest is not None and manifest.mock),
        "prompt_version": answer.prompt_version if manifest is None else manifest.prompt_version,
        "item_id": item.id,
        "patient_id": item.patient_id,
        "template_id": item.template_id,
        "level": item.level,
        "question": item.question,
        "answer_type": item.answer.type,
        "unit": item.answer.unit,
        "as_of": item.as_of,
        "status": answer.status,
        "failure": answer.failure,
        "error": None if record.error is None else record.error.kind,
        "value": _json(answer.value),
        "value_text": _text(answer.value),
        "reference": None if reference is None else _json(reference.value),
        "reference_text": None if reference is None else _text(reference.value),
        "reference_source": None if reference is None else reference.source,
        "score": None if score is None else score.state,
        "correct": None if score is None else score.correct,
        "scorer": None if score is None else score.scorer,
        "explanation": None if score is None else score.explanation,
        "text": answer.text,
        "citations": [f"{c.kind}:{c.id}" for c in answer.citations],
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "tokens_reported": usage.tokens_reported,
        "cost_usd": usage.cost_usd,
        "latency_s": usage.wall_s,
        "model_s": usage.model_s,
        "model_calls": usage.model_calls,
        "requests": usage.requests,
        "tool_calls": usage.tool_calls,
        "max_prompt_tokens": usage.max_prompt_tokens,
        "record_tokens": record.record_tokens,
        "record_documents": record.record_documents,
    }


def _json(value: Any) -> str | None:
    """A value as JSON text (dates as ISO strings); None for no value."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _text(value: Any) -> str | None:
    """A value as a person reads it: no quotes, lists joined with '; '."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "; ".join(t for v in value if (t := _text(v)) is not None)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | str | int | float):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return _json(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- writing ---------------------------------------------------------------------------------


def _format(target: Path, given: str | None) -> str:
    """The format to write ``target`` in: ``given``, checked against the suffix, or the suffix's."""
    named = RESULT_FORMATS.get(target.suffix.lower())
    if given is None:
        if named is None:
            raise UserError(
                f"cannot write results to {shown(target)}: unknown format "
                f"'{target.suffix}'; use one of {', '.join(RESULT_FORMATS)}"
            )
        return named
    if given not in RESULT_FORMATS.values():
        raise UserError(
            f"unknown results format {given!r}; use one of {', '.join(RESULT_FORMATS.values())}"
        )
    if named is not None and named != given:
        raise UserError(
            f"cannot write {given} to {shown(target)}: its suffix '{target.suffix}' names "
            f"{named}; give a file ending in {_suffix_of(given)} or leave out the format"
        )
    return given


def _suffix_of(kind: str) -> str:
    return next(suffix for suffix, named in RESULT_FORMATS.items() if named == kind)


def _refuse_inputs(target: Path, frame: pl.DataFrame, keep: Iterable[str | Path]) -> None:
    """Refuse ``target`` if it is a run log the frame was read from or a file in ``keep``."""
    logs: list[str] = []
    if frame.schema.get("log") == pl.String:
        logs = frame.get_column("log").drop_nulls().unique(maintain_order=True).to_list()
    for source, what in [*((log, "run log") for log in logs), *((k, "input") for k in keep)]:
        if same_file(target, source):
            raise UserError(
                f"cannot write results to {shown(target)}: it is the {what} "
                f"{shown(source)} they were read from; give another file"
            )


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _type_name(dtype: pl.DataType | type[pl.DataType]) -> str:
    names = {
        pl.String: "text",
        pl.Int8: "integer",
        pl.Int64: "integer",
        pl.Float64: "float",
        pl.Boolean: "boolean",
        pl.Date: "date",
    }
    if isinstance(dtype, pl.List):
        inner: Any = dtype.inner
        return f"list of {_type_name(inner)}"
    if isinstance(dtype, pl.Struct):
        field_types: list[tuple[str, Any]] = [(f.name, f.dtype) for f in dtype.fields]
        fields = ", ".join(f"{name}: {_type_name(kind)}" for name, kind in field_types)
        return f"struct ({fields})"
    return names.get(dtype if isinstance(dtype, type) else type(dtype), str(dtype))
