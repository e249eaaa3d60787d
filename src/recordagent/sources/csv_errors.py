"""Load problems of the sources DuckDB reads (MIMIC-IV, OMOP), named by file, row and column.

Two kinds: DuckDB's own errors while reading a CSV file (:func:`csv_problem`), and values that
DuckDB reads fine but the store refuses - years outside 0001-9999, numbers that are not finite
or too large (:func:`value_problems`). Neither quotes the offending line, only the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from recordagent.errors import LoadProblem
from recordagent.records.schema import BUNDLE_TABLES, ColumnType
from recordagent.records.value_rules import ROWS_SHOWN_PER_CHECK, BadValue, sql_value_problem

__all__ = ["TypedRead", "csv_problem", "value_problems"]

_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_COLUMN = re.compile(r'converting column "([^"]+)"')
_CSV_TYPE = re.compile(r"to '([A-Z]+)'")
_KINDS = {
    "DATE": ColumnType.DATE,
    "TIMESTAMP": ColumnType.TIMESTAMP,
    "DOUBLE": ColumnType.NUMBER,
}


def csv_problem(label: str, exc: duckdb.Error) -> LoadProblem:
    """The line and column DuckDB names for ``label``'s file, without the offending content."""
    message = str(exc)
    line = _CSV_LINE.search(message)
    column = _CSV_COLUMN.search(message)
    kind = _CSV_TYPE.search(message)
    if line and column:
        return LoadProblem(
            label,
            f"value is not a valid {kind.group(1) if kind else 'value'} for this column",
            row=int(line.group(1)) - 1,  # DuckDB counts the header line
            column=column.group(1),
        )
    if isinstance(exc, duckdb.ConstraintException):
        return LoadProblem(label, f"the store refused the rows: {message.splitlines()[0]}")
    return LoadProblem(label, f"cannot be read: {message.splitlines()[0]}")


@dataclass(frozen=True)
class TypedRead:
    """One input table as a loader read it: a relation over it and the types it gave columns.

    ``names`` gives a column's name as the file spells it, where the relation renamed it.
    """

    label: str
    relation: str
    types: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)


def value_problems(
    bad: Sequence[BadValue],
    reads: Sequence[TypedRead],
    fallback: str,
    setup: Sequence[str] = (),
) -> list[LoadProblem]:
    """The stored values ``bad`` as problems of the input, by file, row and column.

    The typed columns of ``reads`` are scanned for values breaking the same rules (dates for a
    bad date, numbers for a bad number); a value computed from others (a birth date from a
    year) is found in no column and is named by its table row instead, under ``fallback``.
    Runs only when a load already failed: it reads the inputs again, on a connection of its
    own (``setup`` runs there first, e.g. to attach a database).
    """
    wanted = {BUNDLE_TABLES[b.table].column(b.column).type for b in bad}
    if ColumnType.DATE in wanted or ColumnType.TIMESTAMP in wanted:
        wanted |= {ColumnType.DATE, ColumnType.TIMESTAMP}
    located: list[LoadProblem] = []
    with duckdb.connect() as con:
        # One thread reads a file in order, so row_number() counts the file's data rows.
        con.execute("SET threads = 1")
        for statement in setup:
            con.execute(statement)
        for read in reads:
            located += _scan(con, read, wanted)
    return located or [b.problem(fallback) for b in bad]


def _scan(
    con: duckdb.DuckDBPyConnection, read: TypedRead, wanted: set[ColumnType]
) -> list[LoadProblem]:
    rules = {
        name: rule
        for name, kind in read.types.items()
        if _KINDS.get(kind.upper()) in wanted
        and (rule := sql_value_problem(f'"{name}"', _KINDS[kind.upper()])) is not None
    }
    if not rules:
        return []
    selected = ", ".join(f'CAST("{name}" AS VARCHAR), {rule}' for name, rule in rules.items())
    broken = " OR ".join(f"({rule}) IS NOT NULL" for rule in rules.values())
    try:
        rows = con.execute(
            f"SELECT n, {selected} FROM (SELECT row_number() OVER () AS n, * "
            f"FROM {read.relation}) WHERE {broken} ORDER BY n "
            f"LIMIT {ROWS_SHOWN_PER_CHECK * len(rules)}"
        ).fetchall()
    except duckdb.Error:  # the file reads differently on its own; the fallback names the row
        return []
    problems: list[LoadProblem] = []
    shown = dict.fromkeys(rules, 0)
    for row in rows:
        for k, name in enumerate(rules):
            value, problem = row[1 + 2 * k], row[2 + 2 * k]
            if problem is not None and shown[name] < ROWS_SHOWN_PER_CHECK:
                shown[name] += 1
                column = read.names.get(name, name)
                problems.append(
                    LoadProblem(read.label, f"{problem} (got {value})", int(row[0]), column)
                )
    return problems
