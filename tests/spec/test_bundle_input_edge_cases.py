"""Bundle inputs that once crashed, were silently mangled, or gave a vague error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import UserError
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.schema import BUNDLE_TABLES
from recordagent.settings import ChunkingSettings
from tests.helpers import load_problems, only, set_labs, store_snapshot, use_document_folder


def test_document_files_keep_their_line_endings(store: RecordStore, two_patients: Path):
    folder = use_document_folder(
        two_patients, "document_id,patient_id,date,type,file\nD1,A,2020-01-01,note,d1.txt\n"
    )
    (folder / "d1.txt").write_bytes(b"HISTORY\r\nLine one.\r\nLine two.\n")
    load_bundle(store, two_patients)
    assert store.scope("A").document("D1").text == "HISTORY\r\nLine one.\r\nLine two.\n"


def test_manifest_with_a_text_column_is_refused(store: RecordStore, two_patients: Path):
    folder = use_document_folder(
        two_patients,
        "document_id,patient_id,date,type,file,text\nD1,A,2020-01-01,note,d1.txt,ignored\n",
    )
    (folder / "d1.txt").write_text("Real text.")
    problem = only(load_problems(store, two_patients))
    assert (problem.column, problem.row) == ("text", None)
    assert "unknown column" in problem.message


@pytest.mark.parametrize(
    "file_column",
    [
        pl.Series("file", [["d1.txt"]]),
        pl.Series("file", [dt.timedelta(seconds=1)]),
    ],
)
def test_manifest_file_column_of_the_wrong_type(
    store: RecordStore, two_patients: Path, file_column: pl.Series
):
    manifest = pl.DataFrame(
        {"document_id": ["D1"], "patient_id": ["A"], "date": ["2020-01-01"], "type": ["note"]}
    ).with_columns(file_column)
    use_document_folder(two_patients, manifest)
    problem = only(load_problems(store, two_patients))
    assert problem.column == "file"
    assert "expected text values" in problem.message


def test_manifest_file_name_with_a_nul_byte(store: RecordStore, two_patients: Path):
    use_document_folder(
        two_patients,
        pl.DataFrame(
            {
                "document_id": ["D1"],
                "patient_id": ["A"],
                "date": ["2020-01-01"],
                "type": ["note"],
                "file": ["d1\x00.txt"],
            }
        ),
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "file")
    assert "not a usable file name" in problem.message


@pytest.mark.parametrize(
    ("values", "found"),
    [
        (pl.Series("patient_id", [dt.timedelta(days=1), dt.timedelta(days=2)]), "Duration"),
        (pl.Series("patient_id", [True, False]), "Boolean"),
        (pl.Series("patient_id", [1.0, 2.0]), "Float64"),
    ],
)
def test_ids_must_be_text_or_integers(
    store: RecordStore, two_patients: Path, values: pl.Series, found: str
):
    (two_patients / "patients.csv").unlink()
    pl.DataFrame({"sex": ["female", "male"]}).with_columns(values).write_parquet(
        two_patients / "patients.parquet"
    )
    problems = load_problems(store, two_patients)
    problem = problems[0]
    assert (problem.file, problem.column) == ("patients.parquet", "patient_id")
    assert f"found {found}" in problem.message
    assert "ids must be text or integers" in problem.message


def test_integer_ids_are_accepted(store: RecordStore, tmp_path: Path):
    pl.DataFrame({"patient_id": [7, 8], "sex": ["f", "m"]}).write_parquet(
        tmp_path / "patients.parquet"
    )
    load_bundle(store, tmp_path)
    assert store.patient_ids() == ["7", "8"]


def test_dates_beyond_year_9999_are_an_error_not_a_crash(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").unlink()
    pl.DataFrame(
        {
            "patient_id": ["A", "B"],
            "birth_date": pl.Series([dt.date(1950, 1, 1), None], dtype=pl.Date).set(
                pl.Series([False, True]), None
            ),
        }
    ).with_columns(
        pl.when(pl.col("patient_id") == "B")
        .then(pl.lit(4_000_000).cast(pl.Int32).cast(pl.Date))
        .otherwise(pl.col("birth_date"))
        .alias("birth_date")
    ).write_parquet(two_patients / "patients.parquet")
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (2, "birth_date")
    assert "outside the years 0001-9999" in problem.message


def test_blank_lines_in_csv_are_skipped_and_rows_keep_their_numbers(
    store: RecordStore, two_patients: Path
):
    set_labs(two_patients, "L1,A,2020-01-01,,Creatinine,1.2,,mg/dL,,,", "", ",,,,,,,,,,", "")
    load_bundle(store, two_patients)
    assert [lab.lab_id for lab in store.scope("A").labs()] == ["L1"]

    set_labs(two_patients, "", "L2,A,2020-01-01,,Creatinine,bad,,mg/dL,,,")
    with connect() as fresh:
        problem = only(load_problems(fresh, two_patients))
    assert (problem.row, problem.column) == (2, "value_num")


def test_categorical_text_is_trimmed(store: RecordStore, tmp_path: Path):
    pl.DataFrame({"patient_id": [" A ", "B"], "sex": ["female", "male"]}).with_columns(
        pl.col("patient_id").cast(pl.Categorical)
    ).write_parquet(tmp_path / "patients.parquet")
    load_bundle(store, tmp_path)
    assert store.patient_ids() == ["A", "B"]


def test_repeated_header_names_the_column(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").write_text("patient_id,sex,patient_id\nA,F,A\nB,M,B\n")
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.column) == ("patients.csv", "patient_id")
    assert "more than once" in problem.message


def test_a_row_with_too_many_fields_is_located(store: RecordStore, two_patients: Path):
    header = len(BUNDLE_TABLES["labs"].column_names)
    set_labs(
        two_patients,
        "L1,A,2020-01-01,,Creatinine,1.2,,mg/dL" + "," * (header - 8),
        "L2,A,2020-01-02,,Creatinine,1.3,,mg/dL" + "," * (header - 8) + ",extra",
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row) == ("labs.csv", 2)
    assert f"{header + 1} fields but the header has {header}" in problem.message


def test_vocabulary_errors_quote_the_value_as_written(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").write_text("patient_id,sex\nA,Female\nB,MALEish\n")
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (2, "sex")
    assert "'MALEish'" in problem.message


@pytest.mark.parametrize("value", ["2021-3-4", "2021-03-4", "21-03-04", "2021-03-04 9:00"])
def test_dates_must_be_iso(store: RecordStore, two_patients: Path, value: str):
    set_labs(two_patients, f"L1,A,{value},,Creatinine,1.2,,mg/dL,,,")
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "time")
    assert "ISO" in problem.message


def test_a_date_column_refuses_a_time_of_day(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").write_text(
        "patient_id,birth_date\nA,1950-01-01 00:00:00\nB,1960-06-15 13:45\n"
    )
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (2, "birth_date")
    assert "without a time of day" in problem.message


def test_a_parquet_datetime_in_a_date_column_must_be_midnight(store: RecordStore, tmp_path: Path):
    pl.DataFrame(
        {
            "patient_id": ["A", "B"],
            "birth_date": [dt.datetime(1950, 1, 1), dt.datetime(1960, 6, 15, 13, 45)],
        }
    ).write_parquet(tmp_path / "patients.parquet")
    problem = only(load_problems(store, tmp_path))
    assert (problem.row, problem.column) == (2, "birth_date")


def test_whitespace_is_not_a_lab_value(store: RecordStore, two_patients: Path):
    set_labs(two_patients, 'L1,A,2020-01-01,,Creatinine,,"   ",mg/dL,,,')
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "value_num")
    assert "needs value_num or value_text" in problem.message


def test_a_callers_open_transaction_neither_breaks_nor_absorbs_the_load(
    store: RecordStore, two_patients: Path
):
    store.connection.execute("BEGIN TRANSACTION")
    assert load_bundle(store, two_patients).status == "loaded"
    store.connection.execute("ROLLBACK")  # the load committed on its own
    assert store.patient_ids() == ["A", "B"]


def test_a_load_conflicting_with_uncommitted_changes_is_a_clear_error(
    store: RecordStore, two_patients: Path
):
    load_bundle(store, two_patients)
    before = store_snapshot(store)
    (two_patients / "labs.csv").write_text(
        (two_patients / "labs.csv").read_text() + "LA9,A,2021-01-01,,Creatinine,1.0,,mg/dL,,,\n"
    )
    store.connection.execute("BEGIN TRANSACTION")
    store.connection.execute("DELETE FROM labs WHERE lab_id = 'LA1'")
    with pytest.raises(UserError, match="uncommitted changes"):
        load_bundle(store, two_patients, replace=True)
    store.connection.execute("ROLLBACK")
    assert store_snapshot(store) == before


def test_a_smaller_max_tokens_alone_is_accepted():
    assert ChunkingSettings(max_tokens=32).min_tokens <= 32
    with pytest.raises(ValueError, match="min_tokens must not exceed max_tokens"):
        ChunkingSettings(max_tokens=32, min_tokens=64)


def test_a_file_that_is_not_a_store_is_named(tmp_path: Path):
    other = tmp_path / "labs.csv"
    other.write_text("a,b\n1,2\n")
    for read_only in (False, True):
        with pytest.raises(UserError, match="is not a DuckDB database"):
            connect(other, read_only=read_only)
    assert other.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [("", "is empty"), ("a\x00b", r"invisible character U\+0000"), ("\udcff", "not valid UTF-8")],
    ids=["empty", "nul", "lone surrogate"],
)
def test_a_source_name_that_is_not_visible_text_is_refused(
    store: RecordStore, two_patients: Path, source: str, message: str
):
    before = store_snapshot(store)
    with pytest.raises(UserError, match=message):
        load_bundle(store, two_patients, source=source)
    assert store_snapshot(store) == before


def test_a_bundle_path_too_long_for_the_file_system_is_a_user_error(store: RecordStore):
    with pytest.raises(UserError, match="bundle folder not found"):
        load_bundle(store, "x" * 5_000)
