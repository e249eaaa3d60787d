"""Every kind of bad input gets a DataLoadError naming file, row and column, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordagent.errors import DataLoadError
from recordagent.records.db import RecordStore
from recordagent.records.load import load_bundle
from tests.helpers import load_problems, only, set_labs, store_snapshot


def test_missing_required_column(store: RecordStore, two_patients: Path):
    (two_patients / "events.csv").write_text("event_id,patient_id,kind,label\nE1,A,therapy,VRd\n")
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("events.csv", None, "start_time")
    assert "required column is missing" in problem.message


def test_unknown_column_suggests_the_intended_one(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").write_text("patient_id,sexx\nA,F\nB,M\n")
    problem = only(load_problems(store, two_patients))
    assert problem.column == "sexx"
    assert "did you mean 'sex'" in problem.message


def test_wrong_type(store: RecordStore, two_patients: Path):
    set_labs(
        two_patients,
        "L1,A,2020-01-01,,Creatinine,1.2,,mg/dL,,,",
        "L2,A,2020-01-02,,Creatinine,high,,mg/dL,,,",
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("labs.csv", 2, "value_num")
    assert "expected a number (got 'high')" in problem.message


def test_unparsable_date(store: RecordStore, two_patients: Path):
    set_labs(two_patients, "L1,A,2020-02-30,,Creatinine,1.2,,mg/dL,,,")
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "time")
    assert "2020-02-30" in problem.message


def test_timezone_offsets_are_rejected_with_guidance(store: RecordStore, two_patients: Path):
    set_labs(two_patients, "L1,A,2020-02-03T10:00:00+02:00,,Creatinine,1.2,,mg/dL,,,")
    problem = only(load_problems(store, two_patients))
    assert "no offset" in problem.message


def test_lab_row_for_unknown_patient(store: RecordStore, two_patients: Path):
    set_labs(
        two_patients,
        "L1,A,2020-01-01,,Creatinine,1.2,,mg/dL,,,",
        "L2,Z,2020-01-01,,Creatinine,1.0,,mg/dL,,,",
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("labs.csv", 2, "patient_id")
    assert "unknown patient 'Z'" in problem.message


def test_duplicate_ids_within_a_file(store: RecordStore, two_patients: Path):
    set_labs(
        two_patients,
        "L1,A,2020-01-01,,Creatinine,1.2,,mg/dL,,,",
        "L2,A,2020-01-01,,Creatinine,1.2,,mg/dL,,,",
        "L1,B,2020-01-03,,Creatinine,1.0,,mg/dL,,,",
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (3, "lab_id")
    assert "duplicate id 'L1' (first seen in row 1)" in problem.message


def test_duplicate_ids_against_the_store(store: RecordStore, two_patients: Path, tmp_path: Path):
    load_bundle(store, two_patients)
    second = tmp_path / "second"
    second.mkdir()
    set_labs(second, "LA1,A,2020-01-01,,Creatinine,1.2,,mg/dL,,,")
    problem = only(load_problems(store, second))
    assert (problem.file, problem.row, problem.column) == ("labs.csv", 1, "lab_id")
    assert "already loaded (source 'two_patients')" in problem.message


def test_negative_concentration(store: RecordStore, two_patients: Path):
    set_labs(two_patients, "L1,A,2020-01-01,,Creatinine,-1.2,,mg/dL,,,")
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "value_num")
    assert "cannot be negative" in problem.message


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN"])
def test_non_finite_values(store: RecordStore, two_patients: Path, value: str):
    set_labs(two_patients, f"L1,A,2020-01-01,,Creatinine,{value},,mg/dL,,,")
    problem = only(load_problems(store, two_patients))
    assert problem.column == "value_num"
    assert "finite" in problem.message


def test_empty_document_text(store: RecordStore, two_patients: Path):
    (two_patients / "documents.csv").write_text(
        'document_id,patient_id,date,type,title,text\nD1,A,2020-01-01,note,T,"   \n  "\n'
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("documents.csv", 1, "text")
    assert problem.message == "empty text"


def test_lab_without_any_value(store: RecordStore, two_patients: Path):
    set_labs(two_patients, "L1,A,2020-01-01,,Creatinine,,,mg/dL,,,")
    assert "needs value_num or value_text" in only(load_problems(store, two_patients)).message


def test_inverted_reference_range_and_time_order(store: RecordStore, two_patients: Path):
    set_labs(two_patients, "L1,A,2020-01-01,,Creatinine,1.0,,mg/dL,1.3,0.7,")
    (two_patients / "events.csv").write_text(
        "event_id,patient_id,start_time,end_time,kind,label\nE1,A,2020-05-01,2020-04-01,therapy,VRd\n"
    )
    problems = load_problems(store, two_patients)
    assert {(p.file, p.column) for p in problems} == {
        ("labs.csv", "ref_low"),
        ("events.csv", "end_time"),
    }


def test_unknown_event_kind_lists_the_vocabulary(store: RecordStore, two_patients: Path):
    (two_patients / "events.csv").write_text(
        "event_id,patient_id,start_time,kind,label\nE1,A,2020-05-01,chemo,VRd\n"
    )
    problem = only(load_problems(store, two_patients))
    assert problem.column == "kind"
    assert "must be one of: admission, diagnosis, therapy" in problem.message
    assert "'chemo'" in problem.message


def test_table_in_two_formats(store: RecordStore, two_patients: Path):
    (two_patients / "labs.parquet").write_bytes(b"PAR1")
    assert "more than one format" in only(load_problems(store, two_patients)).message


def test_unreadable_parquet(store: RecordStore, two_patients: Path):
    (two_patients / "labs.csv").unlink()
    (two_patients / "labs.parquet").write_bytes(b"not parquet at all")
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row) == ("labs.parquet", None)
    assert problem.message.startswith("cannot read the file")


def test_manifest_naming_missing_or_escaping_files(store: RecordStore, two_patients: Path):
    (two_patients / "documents.csv").unlink()
    (two_patients / "documents").mkdir()
    (two_patients / "documents" / "manifest.csv").write_text(
        "document_id,patient_id,date,type,file\n"
        "D1,A,2020-01-01,note,missing.txt\n"
        "D2,A,2020-01-01,note,../labs.csv\n"
    )
    problems = load_problems(store, two_patients)
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("documents/manifest.csv", 1, "file"),
        ("documents/manifest.csv", 2, "file"),
    ]
    assert "not found" in problems[0].message
    assert "outside the documents folder" in problems[1].message


def test_many_problems_are_counted_and_capped(store: RecordStore, two_patients: Path):
    rows = [f"L{i},A,2020-01-01,,Creatinine,bad,,mg/dL,,," for i in range(40)]
    set_labs(two_patients, *rows)
    with pytest.raises(DataLoadError) as caught:
        load_bundle(store, two_patients)
    error = caught.value
    assert error.total == 40
    assert len(error.problems) == 3
    assert "and 37 more problem(s) not shown" in str(error)
    assert "labs.csv, row 1, column 'value_num'" in str(error)


def test_a_failed_replacement_keeps_the_old_source(store: RecordStore, two_patients: Path):
    load_bundle(store, two_patients)
    set_labs(two_patients, "L1,A,2020-01-01,,Creatinine,oops,,mg/dL,,,")
    before = store_snapshot(store)
    with pytest.raises(DataLoadError):
        load_bundle(store, two_patients, replace=True)
    assert store_snapshot(store) == before
