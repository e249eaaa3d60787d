"""Quarantine: which rows of a bundle a load given a reject file leaves out, and why.

A row's own problems (a bad value, a duplicated id), then the store's verdict on the rows kept
(an id already loaded, an unknown patient), and the rows that name a rejected patient, which go
with it. Problems that name no row stop the load: no row can be left out to mend them.
"""

from __future__ import annotations

import polars as pl

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.records.bundle import ROW_COLUMN
from recordagent.records.db import RecordStore
from recordagent.records.problem_log import ProblemLog
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.store_checks import check_against_store
from recordagent.settings import Settings

__all__ = ["quarantined", "rejected_per_table"]


def quarantined(
    store: RecordStore,
    typed: dict[str, pl.DataFrame],
    labels: dict[str, str],
    replaced_id: int | None,
    log: ProblemLog,
    settings: Settings,
) -> tuple[dict[str, pl.DataFrame], list[LoadProblem]]:
    """The tables without their invalid rows, and every rejected row's problems.

    Raises:
        DataLoadError: A problem that is not a row's (a missing column, a column of the wrong
            type, a patient a replacement would orphan), or every row was rejected.
    """
    _raise_whole_table_problems(log, settings)
    kept = _without_rows(typed, labels, log.problems)
    rejected_patients: dict[str, tuple[str, int]] = {}
    if "patients" in typed:
        bad_rows = {p.row for p in log.problems if p.file == labels["patients"]}
        for row, patient in (
            typed["patients"]
            .filter(pl.col(ROW_COLUMN).is_in(sorted(r for r in bad_rows if r is not None)))
            .select(ROW_COLUMN, "patient_id")
            .rows()
        ):
            if patient is not None:
                rejected_patients.setdefault(patient, (labels["patients"], row))
    store_log = ProblemLog(keep_all=True)
    check_against_store(store, kept, labels, replaced_id, store_log, rejected_patients)
    _raise_whole_table_problems(store_log, settings)
    kept = _without_rows(kept, labels, store_log.problems)
    problems = log.problems + store_log.problems
    if problems and not any(frame.height for frame in kept.values()):
        counts = rejected_per_table(problems, labels)
        every = [
            LoadProblem(
                labels[table], f"every row was rejected ({n} row{'s' * (n != 1)}); nothing to load"
            )
            for table in BUNDLE_TABLES
            if (n := counts.get(table, 0))
        ]
        raise DataLoadError(
            [*every, *problems][: max(settings.load.max_reported_problems, len(every))],
            total=len(problems) + len(every),
        )
    order = {label: k for k, label in enumerate(labels[t] for t in BUNDLE_TABLES if t in labels)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.row or 0))
    return kept, problems


def _raise_whole_table_problems(log: ProblemLog, settings: Settings) -> None:
    """Problems that name no row stop the load: no row can be left out to mend them."""
    whole = [p for p in log.problems if p.row is None]
    if whole:
        raise DataLoadError(whole[: settings.load.max_reported_problems], total=len(whole))


def _without_rows(
    typed: dict[str, pl.DataFrame], labels: dict[str, str], problems: list[LoadProblem]
) -> dict[str, pl.DataFrame]:
    """Each table without the rows ``problems`` name."""
    kept = {}
    for table, frame in typed.items():
        rows = sorted({p.row for p in problems if p.file == labels[table] and p.row is not None})
        kept[table] = frame.filter(~pl.col(ROW_COLUMN).is_in(rows)) if rows else frame
    return kept


def rejected_per_table(problems: list[LoadProblem], labels: dict[str, str]) -> dict[str, int]:
    """Rows rejected per table (every table of the bundle, zero included)."""
    return {
        table: len({p.row for p in problems if p.file == label}) for table, label in labels.items()
    }
