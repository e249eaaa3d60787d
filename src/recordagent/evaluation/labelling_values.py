"""What an annotator writes in a labelling sheet's cells, read as a label value of the item's type.

A labelling sheet is filled by people in a spreadsheet, so a cell is read by the item's answer
type with the forms a clinician writes (``yes``, ``1.5 g/dL``, ``IgG; IgA``) and nothing that
could mean two things (``06/07/2020``). The value comes back in the JSON form a labels file
holds (:mod:`.labels`): a date as ``YYYY-MM-DD``, a number as a float, a count as an int, a
boolean, a category as its allowed spelling, a list as a list of strings, text as text.

``None`` is "the record does not say": the cell holds ``unanswerable`` (any case) or the
sheet's ``unanswerable`` column is ticked. Other words that might mean it (``none``, ``null``,
``n/a``, ``unknown``) are refused unless the item allows them as a value, or is free text
(which keeps them as written): ``none`` could be a count of 0 or the text "None" (no
allergies), so the annotator says which. An empty cell is
"not labelled" and never reaches :func:`parse_value`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from recordagent.questions.answers import coerce_value
from recordagent.questions.items import EvalItem

__all__ = [
    "UNANSWERABLE_WORDS",
    "answer_format",
    "parse_evidence",
    "parse_flag",
    "parse_value",
    "value_text",
]

UNANSWERABLE_WORDS = frozenset({"unanswerable"})
"""What a value cell holds to say "the record does not say" (any case; unless an allowed value)."""

_AMBIGUOUS_WORDS = frozenset({"none", "null", "nil", "n/a", "na", "unknown", "-"})
"""Words refused as values: they might mean "does not say", 0, or the text itself."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?$")
_YES = frozenset({"yes", "y", "true", "t", "1"})
_NO = frozenset({"no", "n", "false", "f", "0"})
_TICKED = frozenset({"yes", "y", "x", "true", "1", "✓", "✔"})
_UNTICKED = frozenset({"", "no", "n", "false", "0"})
_EVIDENCE_SPLIT = re.compile(r"[;,\s]+")


def answer_format(item: EvalItem) -> str:
    """What an annotator writes in the value cell of this item, in one line."""
    spec = item.answer
    kind = spec.type
    if kind == "date":
        text = "a day as YYYY-MM-DD (keep the cell as text: spreadsheets reformat dates)"
    elif kind == "number":
        text = f"a number in {spec.unit}" if spec.unit else "a number"
    elif kind == "count":
        text = "a whole number (0 or more)"
    elif kind == "boolean":
        text = "yes or no"
    elif kind == "category":
        text = f"one of: {' | '.join(spec.allowed or ())}"
    elif kind == "list":
        text = "every value that applies, separated by ';'"
        if spec.allowed:
            text += f", from: {' | '.join(spec.allowed)}"
    else:
        text = "a short free text"
    if spec.description:
        text = f"{spec.description.rstrip('.')}: {text}"
    return text


def parse_value(item: EvalItem, cell: str) -> Any:
    """The label value a non-empty value cell holds for ``item``.

    Raises:
        ValueError: The cell is not a value of the item's answer type; the message says what
            to write instead.
    """
    text = cell.strip()
    if _is_unanswerable(item, text):
        return None
    kind = item.answer.type
    _refuse_ambiguous(item, text)
    if kind == "date":
        return _date(item, text)
    if kind in ("number", "count"):
        return _number(item, text)
    if kind == "boolean":
        folded = text.casefold()
        if folded in _YES:
            return True
        if folded in _NO:
            return False
        raise ValueError(f"{text!r} is not yes or no")
    if kind == "category":
        return _allowed(item, text)
    if kind == "list":
        return _list(item, text)
    return text


def _is_unanswerable(item: EvalItem, text: str) -> bool:
    folded = text.casefold()
    if folded not in UNANSWERABLE_WORDS:
        return False
    # A category (or list value) that happens to be spelled 'unknown' is that value.
    return not any(option.casefold() == folded for option in item.answer.allowed or ())


def _refuse_ambiguous(item: EvalItem, text: str) -> None:
    """Refuse a word that could mean "does not say", nothing (0) or itself.

    Free text keeps any word (a text answer may be "None"); an allowed value spelled so is
    that value.
    """
    folded = text.casefold()
    if folded not in _AMBIGUOUS_WORDS or item.answer.type == "text":
        return
    if any(option.casefold() == folded for option in item.answer.allowed or ()):
        return
    if item.answer.type == "count":
        raise ValueError(
            f"{text!r} could mean 0 or that the record does not say: write 0, or unanswerable"
        )
    raise ValueError(f"{text!r} is ambiguous: write unanswerable if the record does not say")


def _date(item: EvalItem, text: str) -> str:
    if not _ISO_DATE.match(text):
        raise ValueError(
            f"{text!r} is not a date written YYYY-MM-DD (a spreadsheet may have reformatted "
            "it: format the value column as text)"
        )
    if len(text) > 10:
        # A time after the day is ignored, but it must be a time: '25:00' is a typo.
        try:
            dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"{text!r} is not a valid date and time; write the day as YYYY-MM-DD"
            ) from exc
    try:
        value = coerce_value(item.answer, text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a calendar day (write YYYY-MM-DD)") from exc
    return str(value.isoformat())


def _number(item: EvalItem, text: str) -> float | int:
    if "_" in text:
        # Python reads '1_000' as 1000; a person may have meant a list or a typo.
        raise ValueError(f"{text!r}: write a number without '_' (1000, or 1.5)")
    try:
        value = coerce_value(item.answer, text)
    except ValueError:
        value = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    if item.answer.type == "count":
        raise ValueError(f"{text!r} is not a whole number of 0 or more")
    unit = item.answer.unit
    hint = f" in {unit} (a unit, if written, must be {unit})" if unit else " without a unit"
    raise ValueError(f"{text!r} is not a number{hint}; write decimals with a point")


def _allowed(item: EvalItem, text: str) -> str:
    """The allowed value ``text`` names (case and spacing ignored, synonyms accepted)."""
    folded = " ".join(text.split()).casefold()
    for option in item.answer.allowed or ():
        spellings = (option, *item.scoring.synonyms.get(option, ()))
        if any(" ".join(s.split()).casefold() == folded for s in spellings):
            return option
    if not item.answer.allowed:
        return " ".join(text.split())
    raise ValueError(f"{text!r} is not one of: {', '.join(item.answer.allowed)}")


def _list(item: EvalItem, text: str) -> list[str]:
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{text!r} starts like a JSON list but is not one ({exc.msg}); or separate "
                "the values by ';'"
            ) from exc
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise ValueError(f"{text!r} must be a list of text values")
        parts = [v.strip() for v in raw]
    else:
        parts = [part.strip() for part in re.split(r"[;\n]", text)]
    values = [_allowed(item, part) for part in parts if part]
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ValueError(
            f"{text!r} holds no value: write the values, or unanswerable if the record does not say"
        )
    return unique


def parse_evidence(cell: str) -> list[str]:
    """The record ids in an evidence cell: separated by ';', ',', spaces or new lines."""
    return list(dict.fromkeys(part for part in _EVIDENCE_SPLIT.split(cell.strip()) if part))


def parse_flag(cell: str) -> bool:
    """Whether a tick cell (the unanswerable column) is ticked.

    Raises:
        ValueError: The cell is neither a tick (yes, x, true, 1) nor empty/no.
    """
    folded = cell.strip().casefold()
    if folded in _TICKED:
        return True
    if folded in _UNTICKED:
        return False
    raise ValueError(f"{cell.strip()!r} is not a tick: write yes (or x), or leave it empty")


def value_text(value: Any) -> str:
    """A label value as an annotator would have written it (for the adjudication sheet)."""
    if value is None:
        return "unanswerable"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) if value else "unanswerable"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)
