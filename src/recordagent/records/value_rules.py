"""The value rules every loader shares, whatever the input format.

A date must lie in the years 0001-9999: what Python's ``datetime`` (and so every tool reading
the store) can hold, though DuckDB and polars hold far more. A number must be finite and no
larger than :data:`MAX_MAGNITUDE`. Bundles apply the rules while typing each table
(:mod:`recordagent.records.validate`); loaders that write with SQL (MIMIC-IV, OMOP) or in
batches (FHIR) run :func:`stored_value_problems` over the rows they wrote before committing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from recordagent.errors import LoadProblem
from recordagent.records.schema import BUNDLE_TABLES, ColumnType

__all__ = [
    "MAX_MAGNITUDE",
    "NOT_FINITE",
    "OUTSIDE_CALENDAR",
    "ROWS_SHOWN_PER_CHECK",
    "TOO_LARGE",
    "BadValue",
    "number_problem",
    "sql_value_problem",
    "stored_value_problems",
]

MAX_MAGNITUDE = 1e15
"""Largest magnitude a number may have.

No clinical measurement comes near it in any unit (red cells per litre, ~5e12, are among the
largest counts), float64 holds every integer up to it exactly, and sums, means and variances
over a billion such values stay far inside float64's range: no aggregate can overflow to inf.
"""
OUTSIDE_CALENDAR = "date outside the years 0001-9999"
NOT_FINITE = "value must be a finite number"
TOO_LARGE = "number beyond ±1e15, larger than any measurement"
ROWS_SHOWN_PER_CHECK = 3


def number_problem(value: float) -> str | None:
    """Why a number cannot be stored (not finite, or beyond :data:`MAX_MAGNITUDE`), or None."""
    if not math.isfinite(value):
        return NOT_FINITE
    if abs(value) > MAX_MAGNITUDE:
        return TOO_LARGE
    return None


def sql_value_problem(expression: str, kind: ColumnType) -> str | None:
    """A DuckDB expression giving the rule a value of ``kind`` breaks, or NULL when it keeps them.

    None for text, which has no value rule here. The same rules as the bundle's: a date within
    the years 0001-9999 (DuckDB holds years far beyond, and infinity), a finite number no larger
    than :data:`MAX_MAGNITUDE`.
    """
    if kind is ColumnType.DATE:
        return (
            f"CASE WHEN {expression} < DATE '0001-01-01' OR {expression} > DATE '9999-12-31' "
            f"THEN '{OUTSIDE_CALENDAR}' END"
        )
    if kind is ColumnType.TIMESTAMP:
        return (
            f"CASE WHEN {expression} < TIMESTAMP '0001-01-01' "
            f"OR {expression} >= TIMESTAMP '10000-01-01' THEN '{OUTSIDE_CALENDAR}' END"
        )
    if kind is ColumnType.NUMBER:
        return (
            f"CASE WHEN NOT isfinite({expression}) THEN '{NOT_FINITE}' "
            f"WHEN abs({expression}) > {MAX_MAGNITUDE!r} THEN '{TOO_LARGE}' END"
        )
    return None


@dataclass(frozen=True)
class BadValue:
    """A stored value that breaks a value rule: where it is, what is wrong, what it is."""

    table: str
    row_id: str
    column: str
    message: str
    value: str

    def problem(self, file: str) -> LoadProblem:
        """The value as a load problem of ``file`` (when no input row can be named)."""
        return LoadProblem(
            file,
            f"the {self.table} row '{self.row_id}' would get {self.value}: {self.message}",
            column=self.column,
        )


def stored_value_problems(
    con: duckdb.DuckDBPyConnection, source_id: int, *, limit: int = ROWS_SHOWN_PER_CHECK
) -> list[BadValue]:
    """Values written by source ``source_id`` that break a value rule (a few per column).

    The check every loader that writes without :func:`validate_table` runs before it commits:
    one scan per table of the rows it wrote, so derived values (a birth date computed from a
    year) are checked as well as the ones read.
    """
    found: list[BadValue] = []
    for spec in BUNDLE_TABLES.values():
        rules = {
            col.name: rule
            for col in spec.columns
            if (rule := sql_value_problem(col.name, col.type)) is not None
        }
        if not rules:
            continue
        selected = ", ".join(f"CAST({c} AS VARCHAR), {rule}" for c, rule in rules.items())
        broken = " OR ".join(f"({rule}) IS NOT NULL" for rule in rules.values())
        rows = con.execute(
            f"SELECT {spec.id_column}, {selected} FROM {spec.name} "
            f"WHERE source_id = $source AND ({broken}) "
            f"ORDER BY {spec.id_column} LIMIT {int(limit) * len(rules)}",
            {"source": source_id},
        ).fetchall()
        shown = dict.fromkeys(rules, 0)
        for row in rows:
            for k, column in enumerate(rules):
                value, problem = row[1 + 2 * k], row[2 + 2 * k]
                if problem is not None and shown[column] < limit:
                    shown[column] += 1
                    found.append(BadValue(spec.name, str(row[0]), column, problem, str(value)))
    return found
