"""Patient databases: one patient's rows each, current, and never another's after reuse."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.patient_database import PATIENT_TABLES, PatientDatabases
from tests.helpers import FIXTURES, write_csv


def _patients_seen(store: RecordStore, patient_id: str) -> set[str]:
    rows = store.scope(patient_id).fetch(
        "SELECT patient_id FROM labs UNION SELECT patient_id FROM documents "
        "UNION SELECT patient_id FROM events UNION SELECT patient_id FROM patients"
    )
    return {row[0] for row in rows}


def test_a_reused_database_holds_nothing_of_the_patient_before():
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        # One database kept: every switch of patient empties it and reuses it.
        store.patient_databases = PatientDatabases(capacity=1)
        for patient in ["A", "B", "A", "B", "B", "A"]:
            assert _patients_seen(store, patient) == {patient}
            tables = store.scope(patient).fetch("SELECT table_name FROM duckdb_tables()")
            assert {t for (t,) in tables} <= set(PATIENT_TABLES)


def test_only_the_tables_a_query_reads_are_copied():
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        scope = store.scope("A")
        scope.fetch("SELECT count(*) FROM labs")
        assert scope.fetch("SELECT table_name FROM duckdb_tables()") == [("labs",)]


def test_a_scope_sees_a_load_that_commits_after_it_was_made(tmp_path: Path):
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        scope = store.scope("A")
        assert scope.counts()["labs"] == 3
        write_csv(
            tmp_path / "more",
            "patients",
            [{"patient_id": "A", "sex": "female", "birth_date": "1950-01-01"}],
        )
        write_csv(
            tmp_path / "more",
            "labs",
            [
                {
                    "lab_id": "LA9",
                    "patient_id": "A",
                    "time": "2022-01-01",
                    "analyte_name": "Sodium",
                    "value_num": "140",
                    "unit": "mmol/L",
                }
            ],
        )
        # The same source name replaced: A's record is now the new bundle's.
        load_bundle(store, tmp_path / "more", source="two_patients", replace=True)
        assert [lab.lab_id for lab in scope.labs()] == ["LA9"]


def test_concurrent_scopes_of_many_patients_each_see_only_their_own(tmp_path: Path):
    ids = [f"P{i:02d}" for i in range(12)]
    write_csv(
        tmp_path / "many",
        "patients",
        [{"patient_id": p, "sex": "female", "birth_date": "1950-01-01"} for p in ids],
    )
    write_csv(
        tmp_path / "many",
        "labs",
        [
            {
                "lab_id": f"{p}-L{j}",
                "patient_id": p,
                "time": f"2020-01-{j + 1:02d}",
                "analyte_name": "Sodium",
                "value_num": str(130 + j),
                "unit": "mmol/L",
            }
            for p in ids
            for j in range(5)
        ],
    )
    with connect() as store:
        load_bundle(store, tmp_path / "many")
        # Fewer kept databases than patients and threads: reuse happens under load.
        store.patient_databases = PatientDatabases(capacity=3)
        wrong: list[tuple[str, set[str]]] = []

        def work(offset: int) -> None:
            for round_ in range(20):
                patient = ids[(offset + round_) % len(ids)]
                try:
                    seen = {lab.patient_id for lab in store.scope(patient).labs()}
                except Exception as exc:  # a failure in a thread is a finding too
                    seen = {repr(exc)}
                if seen != {patient}:
                    wrong.append((patient, seen))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert wrong == []


def test_a_patient_database_cannot_be_reconfigured():
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        with store.patient_databases.cursor(store.connection, "A", ("labs",)) as cursor:
            for statement in (
                "SET enable_external_access = true",
                "RESET lock_configuration",
                "SET lock_configuration = false",
            ):
                try:
                    cursor.execute(statement)
                except duckdb.Error:
                    continue
                raise AssertionError(f"{statement} was accepted")
            assert cursor.execute(
                "SELECT current_setting('enable_external_access')"
            ).fetchall() == [(False,)]
