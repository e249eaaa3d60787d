"""Checks of a bundle's rows against the store: ids already loaded, patients that will not exist.

They run once the bundle's tables are valid on their own (in a quarantining load, over the rows
kept), on a cursor of their own; a replacement may not remove patients other sources still name.
"""

from __future__ import annotations

import duckdb
import polars as pl

from recordagent.errors import LoadProblem
from recordagent.records.bundle import ROW_COLUMN
from recordagent.records.db import RecordStore
from recordagent.records.problem_log import ProblemLog
from recordagent.records.schema import BUNDLE_TABLES

__all__ = ["check_against_store"]


def check_against_store(
    store: RecordStore,
    typed: dict[str, pl.DataFrame],
    labels: dict[str, str],
    replaced_id: int | None,
    log: ProblemLog,
    rejected_patients: dict[str, tuple[str, int]] | None = None,
) -> None:
    """Ids already in the store, and references to patients that will not exist.

    A row naming a patient of ``rejected_patients`` (id to file and row) is said to depend on
    that rejected row rather than to name an unknown patient.
    """
    rejected_patients = rejected_patients or {}
    con = store.connection.cursor()
    keep = "source_id IS DISTINCT FROM $replaced"
    params = {"replaced": replaced_id}
    bundle_patients = typed["patients"].select("patient_id") if "patients" in typed else None
    try:
        con.register(
            "_bundle_patients",
            bundle_patients
            if bundle_patients is not None
            else pl.DataFrame({"patient_id": []}, schema={"patient_id": pl.String}),
        )
        known_patients = (
            set(bundle_patients["patient_id"].to_list()) if (bundle_patients is not None) else set()
        )
        known_patients |= {
            r[0]
            for r in con.execute(f"SELECT patient_id FROM patients WHERE {keep}", params).fetchall()
        }
        for table, frame in typed.items():
            spec = BUNDLE_TABLES[table]
            con.register("_incoming", frame.select(ROW_COLUMN, spec.id_column))
            empty = not con.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchall()[0][0]
            clashes = (
                []
                if empty
                else con.execute(
                    f"SELECT i.{ROW_COLUMN}, i.{spec.id_column}, s.name FROM _incoming i "
                    f"JOIN {table} t ON t.{spec.id_column} = i.{spec.id_column} "
                    f"JOIN sources s ON s.source_id = t.source_id WHERE t.{keep} "
                    f"ORDER BY i.{ROW_COLUMN}",
                    params,
                ).fetchall()
            )
            con.unregister("_incoming")
            log.add_each(
                [
                    LoadProblem(
                        labels[table],
                        f"id '{ident}' is already loaded (source '{source_name}')",
                        row,
                        spec.id_column,
                    )
                    for row, ident, source_name in clashes
                ]
            )
            if not spec.references_patient:
                continue
            # Compare the (few) distinct patient ids; rows are looked up only when some are unknown.
            referenced = set(frame["patient_id"].unique().drop_nulls().to_list())
            unknown = referenced - known_patients
            orphans = (
                frame.filter(pl.col("patient_id").is_in(list(unknown)))
                .select(ROW_COLUMN, "patient_id")
                .sort(ROW_COLUMN)
                .rows()
                if unknown
                else []
            )
            log.add_each(
                [
                    LoadProblem(
                        labels[table],
                        _orphan_reason(patient, rejected_patients.get(patient)),
                        row,
                        "patient_id",
                    )
                    for row, patient in orphans
                ]
            )
        if replaced_id is not None:
            _check_replaced_patients_still_referenced(con, replaced_id, log)
    finally:
        con.close()


def _orphan_reason(patient: str, rejected: tuple[str, int] | None) -> str:
    if rejected is not None:
        return f"patient '{patient}' was rejected ({rejected[0]}, row {rejected[1]})"
    return f"unknown patient '{patient}' (not in this bundle's patients nor in the store)"


def _check_replaced_patients_still_referenced(
    con: duckdb.DuckDBPyConnection, replaced_id: int, log: ProblemLog
) -> None:
    rows = con.execute(
        "SELECT DISTINCT p.patient_id, s.name FROM patients p "
        "JOIN (SELECT patient_id, source_id FROM documents UNION ALL "
        "      SELECT patient_id, source_id FROM labs UNION ALL "
        "      SELECT patient_id, source_id FROM events) r "
        "  ON r.patient_id = p.patient_id AND r.source_id <> $replaced "
        "JOIN sources s ON s.source_id = r.source_id "
        "WHERE p.source_id = $replaced "
        "AND p.patient_id NOT IN (SELECT patient_id FROM _bundle_patients) ORDER BY 1",
        {"replaced": replaced_id},
    ).fetchall()
    for patient, other in rows:
        log.add(
            LoadProblem(
                "patients",
                f"patient '{patient}' would be removed by the "
                f"replacement but source '{other}' still has rows for them",
            )
        )
