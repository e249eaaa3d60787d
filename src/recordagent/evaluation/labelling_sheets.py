"""Labelling sheets: the CSV an annotator fills (one row per item), and the adjudication sheet.

An annotator's sheet has the columns of :data:`SHEET_COLUMNS`; the annotator fills ``value``
(in the item's format, :func:`~.labelling_values.answer_format`), or ticks ``unanswerable`` when
the record does not say, and may cite record ids in ``evidence`` and write a ``comment``. An
empty ``value`` with no tick is an item not labelled.

The adjudication sheet has the same leading columns, then each annotator's value, evidence and
comment, a one-line ``disagreement``, and the adjudicator's ``adjudicated_value``,
``unanswerable``, ``evidence`` and ``comment``.

Sheets are written as UTF-8 with a byte-order mark so that spreadsheets show accents; they are
read back with or without it, comma- or semicolon-separated (a spreadsheet in a locale with a
decimal comma saves ';'). Every problem is collected and reported at once: file, data row
(the header is not counted: data row N is the spreadsheet's row N + 1), the line of the file
the row starts on (a cell with line breaks spans several lines) and column.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` is written with a leading ``'``, so
that a spreadsheet shows it as text rather than running it as a formula (CSV formula
injection); a number (``-0.5``) is written as it is. Reading strips that ``'`` again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recordagent.errors import UserError
from recordagent.evaluation.labelling_values import (
    answer_format,
    parse_evidence,
    parse_flag,
    parse_value,
)
from recordagent.paths import path_kind
from recordagent.questions.items import EvalItem

__all__ = [
    "ADJUDICATOR",
    "ITEM_COLUMNS",
    "SHEET_COLUMNS",
    "Sheet",
    "SheetProblems",
    "SheetRow",
    "adjudication_columns",
    "item_cells",
    "read_sheet",
    "reserved_name",
    "sheet_text",
]

ADJUDICATOR = "adjudicator"
"""The annotator name of adjudicated labels (reserved: no annotator sheet may use it)."""

ITEM_COLUMNS = (
    "n",
    "item_id",
    "annotator",
    "patient_id",
    "template_id",
    "question",
    "answer_type",
    "answer_format",
    "as_of",
    "view",
)
"""The leading columns of every sheet: what the item is (filled at export, not to be edited)."""

SHEET_COLUMNS = (*ITEM_COLUMNS, "value", "unanswerable", "evidence", "comment")
"""The columns of an annotator's sheet, in order."""

_MAX_PROBLEMS_SHOWN = 25
_ANNOTATOR_PARTS = ("value", "evidence", "comment")
_ADJUDICATOR_COLUMNS = ("disagreement", "adjudicated_value", "unanswerable", "evidence", "comment")
_FORMULA_START = ("=", "+", "-", "@")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def reserved_name(name: str) -> str | None:
    """Why ``name`` cannot be an annotator's name, or None when it can.

    ``adjudicator`` names adjudicated labels; a name whose adjudication-sheet columns
    (``<name>_value``, …) are column names of the sheet (``adjudicated`` → ``adjudicated_value``)
    would make that sheet unreadable.
    """
    folded = name.casefold()
    if folded == ADJUDICATOR:
        return f"{name!r} is reserved for adjudicated labels"
    taken = {c.casefold() for c in (*ITEM_COLUMNS, *_ADJUDICATOR_COLUMNS)}
    clash = [f"{name}_{part}" for part in _ANNOTATOR_PARTS if f"{folded}_{part}" in taken]
    if clash:
        return (
            f"{name!r} is reserved: its column {clash[0]!r} is a column of the adjudication sheet"
        )
    return None


def adjudication_columns(annotators: Sequence[str]) -> tuple[str, ...]:
    """The columns of the adjudication sheet for these annotators, in order."""
    shown = [f"{name}_{part}" for name in annotators for part in _ANNOTATOR_PARTS]
    return (*ITEM_COLUMNS, *shown, *_ADJUDICATOR_COLUMNS)


def item_cells(position: int, item: EvalItem, annotator: str, view: str) -> dict[str, str]:
    """The leading cells of an item's row (see :data:`ITEM_COLUMNS`)."""
    return {
        "n": str(position),
        "item_id": item.id,
        "annotator": annotator,
        "patient_id": item.patient_id,
        "template_id": item.template_id or "",
        "question": item.question,
        "answer_type": item.answer.type,
        "answer_format": answer_format(item),
        "as_of": item.as_of.isoformat() if item.as_of else "",
        "view": view,
    }


def sheet_text(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> str:
    """A sheet as CSV text (a byte-order mark first, so spreadsheets read it as UTF-8)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: _guarded(cell) for key, cell in row.items()} for row in rows)
    return "\ufeff" + out.getvalue()


def _guarded(cell: str) -> str:
    """The cell, with a leading ``'`` when a spreadsheet would read it as a formula."""
    if cell.startswith(_FORMULA_START) and not _NUMBER.match(cell):
        return "'" + cell
    return cell


def _unguarded(cell: str) -> str:
    """A cell read back: the ``'`` that :func:`_guarded` adds is taken off."""
    stripped = cell.strip()
    if stripped.startswith("'") and stripped[1:2] in _FORMULA_START:
        return stripped[1:]
    return cell


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    path: Path
    row: int | None
    column: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.row is not None:
            where += f", row {self.row} (line {self.line or self.row + 1})"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


@dataclass
class SheetProblems:
    """Problems found in labelling sheets, reported together."""

    found: list[_Problem] = field(default_factory=list)

    def add(
        self,
        path: Path,
        row: int | None,
        column: str | None,
        message: str,
        line: int | None = None,
    ) -> None:
        """Note one problem.

        Args:
            path: The sheet.
            row: The 1-based data row; None for the whole file.
            column: The column; None for the whole row.
            message: What is wrong.
            line: The line of the file the row starts on (default: ``row + 1``).
        """
        self.found.append(_Problem(path, row, column, message, line))

    def raise_if_any(self) -> None:
        """Raise every problem noted as one error (the first 25, and a count of the rest).

        Raises:
            UserError: There is a problem.
        """
        if not self.found:
            return
        lines = [str(problem) for problem in self.found[:_MAX_PROBLEMS_SHOWN]]
        hidden = len(self.found) - _MAX_PROBLEMS_SHOWN
        if hidden > 0:
            lines.append(f"... and {hidden} more problem(s) not shown")
        count = len(self.found)
        raise UserError(
            f"the labelling sheets have {count} problem{'s' if count != 1 else ''}; nothing "
            "was written:\n  " + "\n  ".join(lines)
        )


@dataclass(frozen=True)
class SheetRow:
    """One item's row of a sheet, read.

    Attributes:
        row: The 1-based data row.
        line: The line of the file the row starts on.
        item_id: The item.
        labelled: Whether a value was given (or unanswerable ticked).
        value: The label value (None: the record does not say); None when not labelled.
        evidence: Record ids cited.
        comment: The annotator's comment.
        view: The ``view`` cell: the item's page, relative to the sheet's folder.
    """

    row: int
    line: int
    item_id: str
    labelled: bool
    value: Any
    evidence: list[str]
    comment: str
    view: str = ""


@dataclass(frozen=True)
class Sheet:
    """A sheet read: whose it is and its rows (rows with problems left out)."""

    path: Path
    annotator: str
    rows: list[SheetRow]


def read_sheet(
    path: Path,
    items: Mapping[str, EvalItem],
    problems: SheetProblems,
    *,
    value_column: str = "value",
) -> Sheet | None:
    """Read and check one sheet; its problems go to ``problems``.

    Checked: the columns; every item id known and once; the patient id the item's; one
    annotator name throughout (the file's stem when the column is empty); each value a value
    of its item's answer type; a value and an unanswerable tick not both given; ticks.

    Args:
        path: The CSV file.
        items: The items of the study, by id.
        problems: Where problems are noted.
        value_column: ``value`` for an annotator's sheet, ``adjudicated_value`` for the
            adjudication sheet.

    Returns:
        The sheet, or None when it could not be read at all (the reason is in ``problems``).
    """
    records = _records(path, problems)
    if records is None:
        return None
    header = [name.strip() for name in records[0][1]]
    required = ("item_id", value_column)
    missing = [name for name in required if name not in header]
    if missing:
        problems.add(
            path,
            None,
            None,
            f"missing column(s) {', '.join(missing)}: not a labelling sheet (columns: "
            f"{', '.join(header) or 'none'})",
        )
        return None
    rows: list[SheetRow] = []
    names: dict[str, int] = {}
    lines: dict[int, int] = {}
    seen: dict[str, int] = {}
    for number, (line, raw_cells) in enumerate(records[1:], start=1):
        cells = [_unguarded(c) for c in raw_cells]
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            problems.add(
                path,
                number,
                None,
                f"{len(cells)} cells but the header has {len(header)} columns",
                line,
            )
            continue
        cell = dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=False))
        parsed = _row(path, (number, line), cell, items, problems, value_column, seen)
        name = cell.get("annotator", "").strip()
        if name:
            names.setdefault(name, number)
            lines.setdefault(number, line)
        if parsed is not None:
            rows.append(parsed)
    annotator = _annotator(path, names, lines, problems)
    return Sheet(path=path, annotator=annotator, rows=rows)


def _records(path: Path, problems: SheetProblems) -> list[tuple[int, list[str]]] | None:
    """The sheet's records, each with the line of the file it starts on."""
    kind = path_kind(path, "labelling sheet")
    if kind != "file":
        what = "is a folder" if kind == "folder" else "does not exist"
        problems.add(path, None, None, f"the sheet {what}")
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(path, None, None, f"not UTF-8 text ({exc.reason}); save it as CSV UTF-8")
        return None
    except OSError as exc:
        problems.add(path, None, None, f"cannot be read: {exc.strerror or exc}")
        return None
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        start = 1
        for cells in reader:
            records.append((start, cells))
            # A quoted cell may hold line breaks: the next record starts after this one ends.
            start = reader.line_num + 1
    except csv.Error as exc:
        problems.add(path, None, None, f"not valid CSV: {exc}")
        return None
    if not records:
        problems.add(path, None, None, "empty: a sheet needs its header row")
        return None
    return records


def _row(
    path: Path,
    where: tuple[int, int],
    cell: Mapping[str, str],
    items: Mapping[str, EvalItem],
    problems: SheetProblems,
    value_column: str,
    seen: dict[str, int],
) -> SheetRow | None:
    number, line = where

    def note(column: str, message: str) -> None:
        problems.add(path, number, column, message, line)

    item_id = cell.get("item_id", "").strip()
    if not item_id:
        note("item_id", "is empty")
        return None
    item = items.get(item_id)
    if item is None:
        note("item_id", f"{item_id!r} is not an item of the items file")
        return None
    if item_id in seen:
        note("item_id", f"{item_id!r} again (first in row {seen[item_id]})")
        return None
    seen[item_id] = number
    patient = cell.get("patient_id", "").strip()
    if patient and patient != item.patient_id:
        note(
            "patient_id",
            f"{patient!r}, but item {item_id!r} is about patient {item.patient_id!r}: is this "
            "sheet from another export?",
        )
        return None
    before = len(problems.found)
    raw = cell.get(value_column, "").strip()
    try:
        ticked = parse_flag(cell.get("unanswerable", ""))
    except ValueError as exc:
        note("unanswerable", str(exc))
        ticked = False
    value: Any = None
    if raw:
        try:
            value = parse_value(item, raw)
        except ValueError as exc:
            note(value_column, f"{exc} (item {item_id!r}, {item.answer.type})")
        if ticked and value is not None:
            note(
                value_column,
                "a value and an unanswerable tick; keep one (the tick says the record does "
                "not say)",
            )
    if len(problems.found) != before:
        return None
    return SheetRow(
        row=number,
        line=line,
        item_id=item_id,
        labelled=bool(raw) or ticked,
        value=value,
        evidence=parse_evidence(cell.get("evidence", "")),
        comment=cell.get("comment", "").strip(),
        view=cell.get("view", "").strip(),
    )


def _annotator(
    path: Path, names: Mapping[str, int], lines: Mapping[int, int], problems: SheetProblems
) -> str:
    if len(names) > 1:
        (first, _), *others = sorted(names.items(), key=lambda pair: pair[1])
        for name, row in others:
            problems.add(
                path,
                row,
                "annotator",
                f"{name!r}, but the sheet is {first!r}'s (row {names[first]}); one sheet, one "
                "annotator",
                lines.get(row),
            )
    if names:
        return min(names, key=lambda name: names[name])
    return path.stem
