"""Loading by SQL: each input table becomes store rows through one ``INSERT ... SELECT``.

For sources DuckDB reads itself (CSV files, another DuckDB database): nothing passes through
Python, and a file's bad value fails at its row and column, which the source names for the
user through its :data:`InputProblem`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.records.load_report import LoadProgress
from recordagent.records.source_write import SourceWrite

__all__ = ["InputProblem", "Step", "check_patients", "run_steps"]

InputProblem = Callable[[str, duckdb.Error], LoadProblem]
"""Names a DuckDB error while reading an input table (by its name) as a load problem."""


@dataclass(frozen=True)
class Step:
    """One insert: the input table it comes from, the store table it fills, and its SELECT."""

    source: str
    table: str
    columns: tuple[str, ...]
    sql: str


def run_steps(
    write: SourceWrite, steps: Iterable[Step], progress: LoadProgress, problem: InputProblem
) -> None:
    """Insert each step's rows under the load's source, counting them in ``write.counts``.

    ``progress`` hears of each step as a phase named after its input table.

    Raises:
        DataLoadError: A step failed, named by ``problem``.
    """
    for step in steps:
        progress(step.source, 0, 1)
        columns = ", ".join(step.columns)
        try:
            rows = write.con.execute(
                f"INSERT INTO {step.table} ({columns}, source_id) "
                f"SELECT *, $source_id FROM ({step.sql})",
                {"source_id": write.source_id},
            ).fetchall()
        except duckdb.Error as exc:
            raise DataLoadError([problem(step.source, exc)]) from exc
        write.counts[step.table] += int(rows[0][0]) if rows else 0
        progress(step.source, 1, 1)


def check_patients(
    con: duckdb.DuckDBPyConnection,
    patients: Step,
    problem: InputProblem,
    *,
    label: str,
    column: str,
) -> None:
    """Refuse patients another source already holds (by name, not by a constraint error).

    Args:
        con: The loading cursor.
        patients: The step producing the patients (its SELECT's first column is the id).
        problem: Names a failure to read the patients' input.
        label: The patients' input as the user knows it.
        column: The input's patient id column.

    Raises:
        DataLoadError: Some patients are in the store already (counted, one named).
    """
    try:
        clash = con.execute(
            "SELECT count(*), min(p.patient_id), any_value(s.name) "
            f"FROM ({patients.sql}) n(patient_id) JOIN patients p ON p.patient_id = n.patient_id "
            "JOIN sources s ON s.source_id = p.source_id",
        ).fetchall()
    except duckdb.Error as exc:
        raise DataLoadError([problem(patients.source, exc)]) from exc
    count, example, other = clash[0]
    if count:
        raise DataLoadError(
            [
                LoadProblem(
                    label,
                    f"{count} patient(s) are already in the store from source '{other}' "
                    f"(e.g. {example}); load into another store or replace that source",
                    column=column,
                )
            ]
        )
