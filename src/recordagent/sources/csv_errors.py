"""DuckDB's errors while reading a source's CSV files, as load problems that name no values."""

from __future__ import annotations

import re

import duckdb

from recordagent.errors import LoadProblem

__all__ = ["csv_problem"]

_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_COLUMN = re.compile(r'converting column "([^"]+)"')
_CSV_TYPE = re.compile(r"to '([A-Z]+)'")


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
