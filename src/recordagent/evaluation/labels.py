"""Labels: annotators' answers to items, read from files, and the reference each item gets.

A labels file (CSV, JSONL or Parquet) has one row per (item, annotator) with the columns
``item_id``, ``annotator``, ``value`` (required), ``evidence``, ``adjudicated`` and
``severity`` (optional):

* ``value`` is a JSON value; null (an empty CSV cell) means "the record does not say". In CSV
  (and in a Parquet text column) the cell is text: it is read as JSON where it is JSON
  (``1.5``, ``true``, ``["a", "b"]``, ``null``, ``"quoted text"``), else kept as the string
  (``2020-06-15``, ``IgG kappa``). A cell that starts with ``[`` or ``{`` but is not valid
  JSON is an error rather than a string, because it is almost always a broken list. To keep
  text that reads as JSON (a category called ``true``), quote it: ``"true"``.
* ``evidence``: ids the label rests on; in text, separated by ``;`` or written as a JSON list.
* ``adjudicated``: true/false/1/0/yes/no (empty: false).
* ``severity``: ``clinically_significant``, ``minor`` or empty (what an error on this item
  would mean).

Every problem in a file is collected and reported at once (file, 1-based data row, field);
JSONL rows are numbered by line.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from recordagent.errors import UserError
from recordagent.evaluation.scorers import values_match
from recordagent.paths import path_kind
from recordagent.questions.items import EvalItem

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "Label",
    "ReferenceLabel",
    "Severity",
    "read_labels",
    "reference_labels",
    "write_labels",
]

Severity = Literal["clinically_significant", "minor"]

REQUIRED_COLUMNS = ("item_id", "annotator", "value")
COLUMNS = (*REQUIRED_COLUMNS, "evidence", "adjudicated", "severity")

_MAX_PROBLEMS_SHOWN = 25
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
_SUFFIXES = (".csv", ".jsonl", ".parquet")


class Label(BaseModel):
    """One annotator's label of one item."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, description="The item labelled.")
    annotator: str = Field(min_length=1, description="Who labelled it.")
    value: Any = Field(
        default=None, description="The answer as a JSON value; None: the record does not say."
    )
    evidence: list[str] = Field(
        default_factory=list, description="Ids of the record rows the label rests on."
    )
    adjudicated: bool = Field(
        default=False, description="True for a label settled by adjudication (it wins)."
    )
    severity: Severity | None = Field(
        default=None, description="How much an error on this item would matter clinically."
    )


class ReferenceLabel(BaseModel):
    """The label an item's answers are scored against."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(description="The item.")
    value: Any = Field(description="The reference value; None: the record does not say.")
    source: Literal["adjudicated", "agreed", "single"] = Field(
        description="adjudicated: an adjudicated label; agreed: every annotator agreed; "
        "single: only one annotator labelled the item."
    )
    annotators: list[str] = Field(description="The annotators whose labels it comes from.")


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    row: int | None
    field: str | None
    message: str


@dataclass
class _Problems:
    """Problems found in one file, raised together."""

    path: Path
    found: list[_Problem] = field(default_factory=list)

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.found.append(_Problem(row, column, message))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        lines = []
        for problem in self.found[:_MAX_PROBLEMS_SHOWN]:
            where = str(self.path)
            if problem.row is not None:
                where += f", row {problem.row}"
            if problem.field is not None:
                where += f", field '{problem.field}'"
            lines.append(f"{where}: {problem.message}")
        hidden = len(self.found) - _MAX_PROBLEMS_SHOWN
        if hidden > 0:
            lines.append(f"... and {hidden} more problem(s) not shown")
        count = len(self.found)
        raise UserError(
            f"labels file {self.path} has {count} problem{'s' if count != 1 else ''}:\n  "
            + "\n  ".join(lines)
        )


def read_labels(path: Path) -> list[Label]:
    """The labels in a CSV, JSONL or Parquet file (chosen by suffix).

    Raises:
        UserError: The file is missing or unreadable, or has problems; every problem is
            listed (file, row, field; the first 25 and a count of the rest).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise UserError(
            f"labels file {path}: unknown format '{suffix}'; use one of {', '.join(_SUFFIXES)}"
        )
    kind = path_kind(path, "labels file")
    if kind == "folder":
        raise UserError(f"labels file {path} is a folder, not a file")
    if kind != "file":
        raise UserError(f"labels file {path} does not exist")
    problems = _Problems(path)
    if suffix == ".csv":
        rows = _csv_rows(path, problems)
    elif suffix == ".jsonl":
        rows = _jsonl_rows(path, problems)
    else:
        rows = _parquet_rows(path, problems)
    labels = _labels(rows, problems, value_is_text=suffix != ".jsonl")
    problems.raise_if_any()
    return labels


def _check_columns(columns: Iterable[str], problems: _Problems, row: int | None = None) -> bool:
    """Report unknown and missing columns; False when a required one is missing."""
    present = list(columns)
    unknown = [c for c in present if c not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    what = "field" if row is not None else "column"
    if unknown:
        problems.add(
            row,
            None,
            f"unknown {what}(s) {', '.join(repr(c) for c in unknown)}; "
            f"expected: {', '.join(COLUMNS)}",
        )
    if missing:
        problems.add(row, None, f"missing required {what}(s) {', '.join(repr(c) for c in missing)}")
    return not missing


def _csv_rows(path: Path, problems: _Problems) -> list[tuple[int, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            records = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise UserError(f"labels file {path} is not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise UserError(f"labels file {path} is not valid CSV: {exc}") from exc
    if not records:
        raise UserError(
            f"labels file {path} is empty: it needs a header row ({', '.join(COLUMNS)})"
        )
    header = [name.strip() for name in records[0]]
    repeated = sorted(name for name, n in Counter(header).items() if n > 1)
    if repeated:
        problems.add(None, None, f"column(s) {', '.join(map(repr, repeated))} appear twice")
    if not _check_columns(header, problems):
        return []
    rows = []
    for number, cells in enumerate(records[1:], start=1):
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) > len(header):
            problems.add(
                number, None, f"{len(cells)} cells but the header has {len(header)} columns"
            )
            continue
        cells = cells + [""] * (len(header) - len(cells))
        rows.append((number, dict(zip(header, cells, strict=True))))
    return rows


def _jsonl_rows(path: Path, problems: _Problems) -> list[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"labels file {path} is not UTF-8 text ({exc.reason})") from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            problems.add(number, None, f"a row must be a JSON object, not {type(record).__name__}")
            continue
        if _check_columns(record, problems, row=number):
            rows.append((number, record))
    return rows


def _parquet_rows(path: Path, problems: _Problems) -> list[tuple[int, dict[str, Any]]]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"labels file {path} is not a readable Parquet file: {exc}") from exc
    if not _check_columns(table.column_names, problems):
        return []
    return list(enumerate(table.to_pylist(), start=1))


def _labels(
    rows: Sequence[tuple[int, dict[str, Any]]], problems: _Problems, *, value_is_text: bool
) -> list[Label]:
    labels = []
    first_row: dict[tuple[str, str], int] = {}
    for number, record in rows:
        before = len(problems.found)
        item_id = _name(record.get("item_id"), number, "item_id", problems)
        annotator = _name(record.get("annotator"), number, "annotator", problems)
        value = _value(record.get("value"), number, problems, value_is_text=value_is_text)
        evidence = _evidence(record.get("evidence"), number, problems)
        adjudicated = _adjudicated(record.get("adjudicated"), number, problems)
        severity = _severity(record.get("severity"), number, problems)
        if item_id and annotator:
            key = (item_id, annotator)
            if key in first_row:
                problems.add(
                    number,
                    "annotator",
                    f"a second label of item {item_id!r} by annotator {annotator!r} (the first "
                    f"is row {first_row[key]}); keep one label per item and annotator",
                )
            else:
                first_row[key] = number
        if len(problems.found) == before:
            labels.append(
                Label(
                    item_id=item_id,
                    annotator=annotator,
                    value=value,
                    evidence=evidence,
                    adjudicated=adjudicated,
                    severity=severity,
                )
            )
    return labels


def _name(raw: Any, row: int, column: str, problems: _Problems) -> str:
    if not isinstance(raw, str):
        if raw is None:
            problems.add(row, column, "is empty")
        else:
            problems.add(row, column, f"must be text, not {type(raw).__name__} {raw!r}")
        return ""
    text = raw.strip()
    if not text:
        problems.add(row, column, "is empty")
    return text


def _value(raw: Any, row: int, problems: _Problems, *, value_is_text: bool) -> Any:
    if isinstance(raw, float) and math.isnan(raw):
        return None  # Parquet and pandas write a missing number as NaN
    if isinstance(raw, str) and value_is_text:
        try:
            return _value_from_text(raw)
        except ValueError as exc:
            problems.add(row, "value", str(exc))
    return raw


def _value_from_text(text: str) -> Any:
    """A text cell's value: JSON where it is JSON, else the string; empty is null."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        return json.loads(stripped, parse_constant=_no_constant)
    except ValueError as exc:
        if stripped[0] in "[{":
            raise ValueError(
                f"{_short(stripped)} starts like a JSON list or object but is not valid JSON "
                f'({getattr(exc, "msg", exc)}); write a list as ["a", "b"]'
            ) from exc
        return stripped


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; 'NaN' in a cell stays the text it is.
    raise ValueError(f"{name} is not a JSON value")


def _value_to_text(value: Any) -> str:
    """The text cell that reads back (by :func:`_value_from_text`) as ``value``."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            if value == value.strip() and _value_from_text(value) == value:
                return value
        except ValueError:
            pass
    return json.dumps(value, ensure_ascii=False)


def _evidence(raw: Any, row: int, problems: _Problems) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.add(
                    row, "evidence", f"{_short(text)} is not a valid JSON list ({exc.msg})"
                )
                return []
        else:
            return [part.strip() for part in text.split(";") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
        problems.add(
            row, "evidence", f"must be ids separated by ';' or a list of strings, not {_short(raw)}"
        )
        return []
    return [e.strip() for e in raw if e.strip()]


def _adjudicated(raw: Any, row: int, problems: _Problems) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        key = raw.strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    problems.add(row, "adjudicated", f"must be true/false/1/0/yes/no, not {_short(raw)}")
    return False


def _severity(raw: Any, row: int, problems: _Problems) -> Severity | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        key = raw.strip().lower().replace(" ", "_").replace("-", "_")
        if not key:
            return None
        if key == "clinically_significant":
            return "clinically_significant"
        if key == "minor":
            return "minor"
    problems.add(
        row, "severity", f"must be clinically_significant, minor or empty, not {_short(raw)}"
    )
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


# --- writing ---------------------------------------------------------------------------------


def write_labels(labels: Sequence[Label], path: Path) -> None:
    """Write ``labels`` to a CSV, JSONL or Parquet file (chosen by suffix) that reads back equal.

    Raises:
        UserError: The suffix is not .csv, .jsonl or .parquet.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise UserError(
            f"cannot write labels to {path}: unknown format '{suffix}'; use one of "
            f"{', '.join(_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [label.model_dump(mode="json") for label in labels]
    if suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for r in records:
                writer.writerow(
                    [
                        r["item_id"],
                        r["annotator"],
                        _value_to_text(r["value"]),
                        _evidence_to_text(r["evidence"]),
                        "true" if r["adjudicated"] else "false",
                        r["severity"] or "",
                    ]
                )
    else:
        # value as text (the CSV rule): one column cannot hold numbers, dates and lists at once.
        columns = {
            "item_id": pa.array([r["item_id"] for r in records], pa.string()),
            "annotator": pa.array([r["annotator"] for r in records], pa.string()),
            "value": pa.array(
                [None if r["value"] is None else _value_to_text(r["value"]) for r in records],
                pa.string(),
            ),
            "evidence": pa.array([r["evidence"] for r in records], pa.list_(pa.string())),
            "adjudicated": pa.array([r["adjudicated"] for r in records], pa.bool_()),
            "severity": pa.array([r["severity"] for r in records], pa.string()),
        }
        pq.write_table(pa.table(columns), path)


def _evidence_to_text(evidence: list[str]) -> str:
    plain = all(e and e == e.strip() and ";" not in e for e in evidence)
    if plain and not (evidence and evidence[0].startswith("[")):
        return ";".join(evidence)
    return json.dumps(evidence, ensure_ascii=False)


# --- references ------------------------------------------------------------------------------


def reference_labels(
    labels: Iterable[Label], items: Mapping[str, EvalItem] | None = None
) -> tuple[dict[str, ReferenceLabel], list[str]]:
    """The reference label of every labelled item, and the items left without one.

    Per item: the adjudicated label when there is one (several adjudicated labels must agree,
    else the item is unresolved); otherwise the annotators' common value when every pair of
    them agrees (source "agreed", or "single" for one annotator); otherwise unresolved.
    Agreement is :func:`values_match` under the item's scoring rules when ``items`` knows the
    item (dates and numbers within tolerance, category synonyms), else equality after
    normalisation. Where agreeing values differ (two dates a day apart), the reference is the
    most common value, ties going to the first annotator by name.

    Items in ``items`` without any label are not listed: ``items`` only informs agreement.

    Returns:
        (references by item id, sorted ids of labelled items without a reference).
    """
    by_item: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_item[label.item_id].append(label)
    references: dict[str, ReferenceLabel] = {}
    unresolved: list[str] = []
    for item_id in sorted(by_item):
        group = sorted(by_item[item_id], key=lambda label: label.annotator)
        item = items.get(item_id) if items is not None else None
        adjudicated = [label for label in group if label.adjudicated]
        chosen = adjudicated or group
        if not _all_agree(item, chosen):
            unresolved.append(item_id)
            continue
        if adjudicated:
            source: Literal["adjudicated", "agreed", "single"] = "adjudicated"
        else:
            source = "single" if len(group) == 1 else "agreed"
        references[item_id] = ReferenceLabel(
            item_id=item_id,
            value=_most_common(chosen),
            source=source,
            annotators=[label.annotator for label in chosen],
        )
    return references, unresolved


def _all_agree(item: EvalItem | None, labels: Sequence[Label]) -> bool:
    return all(
        values_match(item, a.value, b.value) for k, a in enumerate(labels) for b in labels[k + 1 :]
    )


def _most_common(labels: Sequence[Label]) -> Any:
    """The most frequent value (by its JSON form), ties to the earliest label."""
    keys = [json.dumps(label.value, sort_keys=True, default=str) for label in labels]
    counts = Counter(keys)
    best = max(range(len(labels)), key=lambda k: (counts[keys[k]], -k))
    return labels[best].value
