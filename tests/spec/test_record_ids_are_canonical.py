"""Ids are stored in one canonical form: the same id typed on macOS and on Linux is one id.

Every id (patient_id, document_id, lab_id, event_id) is trimmed of surrounding white space and
put in Unicode NFC; ids holding invisible characters (controls, zero-width or bidirectional
format characters, line separators) are refused.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from recordagent.records.db import RecordStore
from recordagent.records.load import load_bundle
from tests.helpers import load_problems, only, set_labs

COMPOSED = "Jos\u00e9"  # NFC: é is one code point (Linux, Windows)
DECOMPOSED = "Jose\u0301"  # NFD: e + combining acute (macOS file names, some exports)


def test_nfc_and_nfd_forms_of_a_patient_id_are_one_patient(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").write_text(f"patient_id,sex\nA,F\nB,M\n{COMPOSED},M\n")
    set_labs(
        two_patients,
        f"L1,{DECOMPOSED},2020-01-01,,Creatinine,1.2,,mg/dL,,,",
        f"L2,{COMPOSED},2020-01-02,,Creatinine,1.3,,mg/dL,,,",
    )
    load_bundle(store, two_patients)
    assert store.patient_ids() == ["A", "B", COMPOSED]
    owners = store.connection.execute("SELECT DISTINCT patient_id FROM labs").fetchall()
    assert owners == [(COMPOSED,)]
    # Asked for in either form (or with stray spaces), it is the one stored patient.
    for asked in (DECOMPOSED, COMPOSED, f" {DECOMPOSED}\t"):
        assert store.has_patient(asked)
        scope = store.scope(asked)
        assert scope.patient_id == COMPOSED
        assert [lab.lab_id for lab in scope.labs()] == ["L1", "L2"]


def test_the_two_forms_of_one_id_in_one_table_are_duplicates(
    store: RecordStore, two_patients: Path
):
    (two_patients / "patients.csv").write_text(
        f"patient_id,sex\nA,F\nB,M\n{COMPOSED},M\n{DECOMPOSED},F\n"
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("patients.csv", 4, "patient_id")
    assert f"duplicate id '{COMPOSED}' (first seen in row 3)" in problem.message


def test_decomposed_lab_ids_are_stored_composed(store: RecordStore, two_patients: Path):
    set_labs(two_patients, f"L-{DECOMPOSED},A,2020-01-01,,Creatinine,1.2,,mg/dL,,,")
    load_bundle(store, two_patients)
    (lab_id,) = store.connection.execute("SELECT lab_id FROM labs").fetchall()[0]
    assert lab_id == f"L-{COMPOSED}" and unicodedata.is_normalized("NFC", lab_id)


@pytest.mark.parametrize(
    "ident",
    ["C\x07", "C\tD", "E\u200b", "\u202eevil", "F\u2028G", "H\x00"],
    ids=["bell", "tab", "zero-width space", "right-to-left override", "line separator", "nul"],
)
def test_ids_with_invisible_characters_are_refused(
    store: RecordStore, two_patients: Path, ident: str
):
    (two_patients / "patients.csv").write_text(f'patient_id,sex\nA,F\nB,M\n"{ident}",M\n')
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("patients.csv", 3, "patient_id")
    assert "invisible or control character" in problem.message
