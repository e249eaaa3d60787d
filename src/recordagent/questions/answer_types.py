"""The answer types, one table entry each: everything that differs between them.

An :class:`AnswerKind` says what the typed value of an answer is (its Python type and how the
final-answer schema describes it), how a loose form a model plausibly writes is tidied, which
spec and scoring options apply to it, which gold types a template may derive for it, and what
a silver query's value column must hold. The answer schema (:mod:`.answers`), the template
checks (:mod:`.templates`, :mod:`.silver_templates`) and the scorers all read this table, so
that adding an answer type is one entry here plus its scorer function.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import polars as pl

__all__ = [
    "ANSWER_KINDS",
    "AnswerKind",
    "AnswerType",
    "answer_kind",
    "type_summary",
]

AnswerType = Literal["date", "number", "count", "boolean", "category", "list", "text"]

Allowed = tuple[str, ...] | None

_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?$")
_NUMBER_WITH_UNIT = re.compile(r"^(?P<number>[-+]?\d+(?:\.\d+)?)\s*(?P<unit>[^\d\s].*)?$")
_INTEGER = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Int128, pl.UInt8, pl.UInt16, pl.UInt32)
_WHOLE = (*_INTEGER, pl.UInt64)
_NUMERIC = (*_WHOLE, pl.Float32, pl.Float64, pl.Decimal)


@dataclass(frozen=True)
class AnswerKind:
    """One answer type: its value, its loose forms, and the options and checks that apply.

    Attributes:
        name: The type, as an AnswerSpec's ``type`` names it.
        summary: How the AnswerSpec schema lists the type, e.g. 'date (a day)'.
        python_type: The value's Python type, given the spec's allowed values.
        shape: What the final-answer schema says the value is, given unit and allowed values
            (the spec's own description comes before it).
        nullable: Whether "no value" is None (else it is the empty list).
        tidy: A loose written form as the strict type expects it, given unit and allowed
            values (the value is not None and not a null word); unchanged where ambiguous.
        minimum: The smallest value allowed, where there is one.
        unit: Whether a spec of this type may name a unit.
        allowed: Whether the spec's allowed values are required, optional or refused.
        scoring: The ScoringSpec fields that apply to this type.
        gold: The gold-expression types a template may derive an answer of this type from.
        judged: Free text: graded by a judge's verdict, never by rule.
        sql: What a silver query's value column must hold, as the problem message says it.
        fits_sql: Whether a value column of this polars type holds an answer of this type.
    """

    name: AnswerType
    summary: str
    python_type: Callable[[Allowed], Any]
    shape: Callable[[str | None, Allowed], str]
    tidy: Callable[[Any, str | None, Allowed], Any]
    sql: str
    fits_sql: Callable[[pl.DataType], bool]
    gold: frozenset[str]
    nullable: bool = True
    minimum: int | None = None
    unit: bool = False
    allowed: Literal["required", "optional", "refused"] = "refused"
    scoring: frozenset[str] = field(default_factory=frozenset)
    judged: bool = False

    @property
    def empty(self) -> Any:
        """The value that says "no value": None, or ``[]`` for lists."""
        return None if self.nullable else []


def _literal(values: tuple[str, ...]) -> Any:
    """``Literal[values...]`` built at run time (templates are data, not code)."""
    return Literal.__getitem__(values)


def _list_type(allowed: Allowed) -> Any:
    item: Any = _literal(allowed) if allowed else str
    return list[item]


def _allowed_form(value: str, allowed: Allowed) -> str:
    """The allowed value ``value`` names, ignoring case; else ``value`` (to be refused)."""
    for option in allowed or ():
        if option.lower() == value.lower():
            return option
    return value


def _same_unit(written: str, expected: str | None) -> bool:
    return expected is not None and written.strip().lower() == expected.strip().lower()


def _tidy_date(raw: Any, unit: str | None, allowed: Allowed) -> Any:
    return raw[:10] if isinstance(raw, str) and _DATE_PREFIX.match(raw) else raw


def _tidy_number(raw: Any, unit: str | None, allowed: Allowed) -> Any:
    if isinstance(raw, str):
        match = _NUMBER_WITH_UNIT.match(raw)
        if match and (not match["unit"] or _same_unit(match["unit"], unit)):
            return match["number"]
    return raw


def _tidy_category(raw: Any, unit: str | None, allowed: Allowed) -> Any:
    return _allowed_form(raw, allowed) if isinstance(raw, str) else raw


def _tidy_list(raw: Any, unit: str | None, allowed: Allowed) -> Any:
    items = [raw] if isinstance(raw, str) else raw
    if isinstance(items, list):
        return [_allowed_form(i.strip(), allowed) if isinstance(i, str) else i for i in items]
    return raw


def _tidy_text(raw: Any, unit: str | None, allowed: Allowed) -> Any:
    return raw if isinstance(raw, str) else str(raw)


def _as_is(raw: Any, unit: str | None, allowed: Allowed) -> Any:
    return raw


def _list_shape(unit: str | None, allowed: Allowed) -> str:
    listed = f" Values from: {', '.join(allowed)}." if allowed else ""
    return f"Every value that applies;{listed} [] if none."


_EVERY_TYPE: frozenset[str] = frozenset(get_args(AnswerType))

ANSWER_KINDS: Mapping[AnswerType, AnswerKind] = {
    kind.name: kind
    for kind in (
        AnswerKind(
            name="date",
            summary="date (a day)",
            python_type=lambda allowed: dt.date,
            shape=lambda unit, allowed: "A day as YYYY-MM-DD",
            tidy=_tidy_date,
            scoring=frozenset({"tolerance_days"}),
            gold=frozenset({"date"}),
            sql="a DATE: cast timestamps with CAST(x AS DATE)",
            fits_sql=lambda dtype: dtype == pl.Date,
        ),
        AnswerKind(
            name="number",
            summary="number (with unit)",
            python_type=lambda allowed: float,
            shape=lambda unit, allowed: f"A number{f' in {unit}' if unit else ''}",
            tidy=_tidy_number,
            unit=True,
            scoring=frozenset({"abs_tol", "rel_tol"}),
            # Numbers are whole when a count is derived.
            gold=frozenset({"number", "count"}),
            sql="a number",
            fits_sql=lambda dtype: isinstance(dtype, _NUMERIC),
        ),
        AnswerKind(
            name="count",
            summary="count (a whole number)",
            python_type=lambda allowed: int,
            shape=lambda unit, allowed: "A whole number ≥ 0",
            tidy=_tidy_number,
            minimum=0,
            scoring=frozenset({"abs_tol", "rel_tol"}),
            gold=frozenset({"count", "number"}),
            sql="a whole number",
            fits_sql=lambda dtype: isinstance(dtype, _WHOLE),
        ),
        AnswerKind(
            name="boolean",
            summary="boolean",
            python_type=lambda allowed: bool,
            shape=lambda unit, allowed: "true or false",
            tidy=_as_is,
            gold=frozenset({"boolean"}),
            sql="a BOOLEAN",
            fits_sql=lambda dtype: dtype == pl.Boolean,
        ),
        AnswerKind(
            name="category",
            summary="category (one of the allowed values)",
            python_type=lambda allowed: _literal(allowed or ()),
            shape=lambda unit, allowed: f"One of: {', '.join(allowed or ())}",
            tidy=_tidy_category,
            allowed="required",
            scoring=frozenset({"synonyms"}),
            gold=frozenset({"category"}),
            sql="text",
            fits_sql=lambda dtype: dtype == pl.String,
        ),
        AnswerKind(
            name="list",
            summary="list (several values)",
            python_type=_list_type,
            shape=_list_shape,
            tidy=_tidy_list,
            nullable=False,
            allowed="optional",
            scoring=frozenset({"synonyms", "list_match"}),
            gold=frozenset({"list"}),
            sql="a list of text (VARCHAR[])",
            fits_sql=lambda dtype: dtype == pl.List(pl.String),
        ),
        AnswerKind(
            name="text",
            summary="text",
            python_type=lambda allowed: str,
            shape=lambda unit, allowed: "A short free-text answer",
            tidy=_tidy_text,
            judged=True,
            # Any gold value can be written out as text.
            gold=_EVERY_TYPE,
            sql="text",
            fits_sql=lambda dtype: dtype == pl.String,
        ),
    )
}
"""Every answer type, in the order the AnswerSpec schema lists them."""


def answer_kind(name: AnswerType) -> AnswerKind:
    """The table entry of an answer type."""
    return ANSWER_KINDS[name]


def type_summary() -> str:
    """The answer types as the AnswerSpec schema lists them: 'a, b, ... or z.'."""
    summaries = [kind.summary for kind in ANSWER_KINDS.values()]
    return ", ".join(summaries[:-1]) + f", or {summaries[-1]}."
