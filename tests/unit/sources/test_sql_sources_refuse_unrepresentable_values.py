"""MIMIC-IV and OMOP loads refuse dates and numbers the store cannot hold, naming file and row.

DuckDB reads years 0 and 10000 and 'inf' without complaint; the loaders check every value they
wrote before committing and trace each refused one back to the input's file, data row and
column (or, for a value computed from others, to the table row it would have become). A named
pipe where a table's file should be is refused instead of blocking the load.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.records.db import RecordStore
from recordagent.sources.mimic_iv import load_mimic_iv
from recordagent.sources.omop import load_omop
from tests.helpers import FIXTURES, store_snapshot


@pytest.fixture
def mimic(tmp_path: Path) -> Path:
    target = tmp_path / "mimic"
    shutil.copytree(FIXTURES / "mimic_iv_notes", target)
    return target


@pytest.fixture
def omop(tmp_path: Path) -> Path:
    target = tmp_path / "omop"
    shutil.copytree(FIXTURES / "omop" / "notes", target)
    return target


def replace_in(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))


def problems_of(load: object, store: RecordStore, folder: Path) -> list[LoadProblem]:
    before = store_snapshot(store)
    with pytest.raises(DataLoadError) as caught:
        load(store, folder)  # type: ignore[operator]
    assert store_snapshot(store) == before
    return list(caught.value.problems)


def nth_value(path: Path, row: int, column: str) -> str:
    """The text of ``column`` in data row ``row`` (1-based) of a simple CSV file."""
    lines = path.read_text().splitlines()
    return lines[row].split(",")[lines[0].split(",").index(column)]


@pytest.mark.parametrize(("year", "shown"), [("0000", "(BC)"), ("10000", "10000-")])
def test_a_mimic_lab_time_outside_the_calendar_names_file_row_and_column(
    store: RecordStore, mimic: Path, year: str, shown: str
):
    labevents = mimic / "hosp" / "labevents.csv"
    time = nth_value(labevents, 2, "charttime")
    replace_in(labevents, f",{time},", f",{year}{time[4:]},")
    (problem,) = problems_of(load_mimic_iv, store, mimic)
    assert (problem.file, problem.row, problem.column) == ("hosp/labevents.csv", 2, "charttime")
    assert "outside the years 0001-9999" in problem.message and shown in problem.message


@pytest.mark.parametrize(("value", "message"), [("inf", "finite"), ("1e300", "beyond ±1e15")])
def test_a_mimic_number_the_store_refuses_names_file_row_and_column(
    store: RecordStore, mimic: Path, value: str, message: str
):
    labevents = mimic / "hosp" / "labevents.csv"
    lines = labevents.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[3].split(",")
    fields[header.index("valuenum")] = value
    lines[3] = ",".join(fields)
    labevents.write_text("\n".join(lines) + "\n")
    (problem,) = problems_of(load_mimic_iv, store, mimic)
    assert (problem.file, problem.row, problem.column) == ("hosp/labevents.csv", 3, "valuenum")
    assert message in problem.message


def test_a_computed_mimic_birth_date_outside_the_calendar_names_the_patient(
    store: RecordStore, mimic: Path
):
    replace_in(mimic / "hosp" / "patients.csv", "19000001,F,64,2180", "19000001,F,64,20")
    (problem,) = problems_of(load_mimic_iv, store, mimic)
    assert (problem.file, problem.column) == ("mimic", "birth_date")
    assert "the patients row '19000001' would get" in problem.message
    assert "outside the years 0001-9999" in problem.message


def test_a_non_finite_omr_result_stays_text(store: RecordStore, mimic: Path):
    (mimic / "hosp" / "omr.csv").write_text(
        "subject_id,chartdate,seq_num,result_name,result_value\n"
        "19000001,2180-03-01,1,Weight (Lbs),NaN\n"
        "19000001,2180-03-01,1,Height (Inches),64\n"
    )
    load_mimic_iv(store, mimic)
    rows = store.connection.execute(
        "SELECT analyte_name, value_num, value_text FROM labs WHERE lab_id LIKE 'OMR-%' "
        "ORDER BY analyte_name"
    ).fetchall()
    assert rows == [("Height (Inches)", 64.0, None), ("Weight (Lbs)", None, "NaN")]


def test_a_named_pipe_in_a_mimic_folder_is_refused_without_blocking(
    store: RecordStore, mimic: Path
):
    os.mkfifo(mimic / "hosp" / "transfers.csv")
    (problem,) = problems_of(load_mimic_iv, store, mimic)
    assert problem.file == "hosp/transfers.csv"
    assert "named pipe (FIFO), not a regular file" in problem.message


def test_an_omop_datetime_outside_the_calendar_names_file_row_and_column(
    store: RecordStore, omop: Path
):
    replace_in(omop / "MEASUREMENT.csv", "2021-05-03 07:30:00", "0000-05-03 07:30:00")
    (problem,) = problems_of(load_omop, store, omop)
    assert (problem.file, problem.row, problem.column) == (
        "MEASUREMENT.csv",
        1,
        "measurement_datetime",
    )
    assert "outside the years 0001-9999" in problem.message


def test_an_infinite_omop_value_names_file_row_and_column(store: RecordStore, omop: Path):
    replace_in(omop / "MEASUREMENT.csv", "2021-05-04,,1.1,", "2021-05-04,,-Infinity,")
    (problem,) = problems_of(load_omop, store, omop)
    assert (problem.file, problem.row, problem.column) == ("MEASUREMENT.csv", 2, "value_as_number")
    assert "finite" in problem.message


def test_an_omop_year_of_birth_of_zero_names_the_person(store: RecordStore, omop: Path):
    replace_in(omop / "person.csv", "101,8532,1970,3", "101,8532,0,3")
    (problem,) = problems_of(load_omop, store, omop)
    assert (problem.file, problem.column) == ("omop", "birth_date")
    assert "the patients row '101' would get" in problem.message


def test_an_omop_database_with_year_zero_names_table_row_and_column(
    store: RecordStore, omop: Path, tmp_path: Path
):
    replace_in(omop / "MEASUREMENT.csv", "2021-05-04,,1.1,", "2021-05-04,0000-05-04 10:00:00,1.1,")
    database = tmp_path / "cdm.duckdb"
    with duckdb.connect(str(database)) as con:
        for csv in omop.glob("*.csv"):
            con.execute(
                f"CREATE TABLE {csv.stem.lower()} AS SELECT * FROM read_csv('{csv}', "
                "header = true, all_varchar = true)"
            )
        con.execute(
            "ALTER TABLE measurement ALTER measurement_datetime TYPE TIMESTAMP "
            "USING CAST(nullif(measurement_datetime, '') AS TIMESTAMP)"
        )
    (problem,) = problems_of(load_omop, store, database)
    assert (problem.file, problem.row, problem.column) == (
        "cdm.duckdb:main.measurement",
        2,
        "measurement_datetime",
    )


def test_a_named_pipe_in_an_omop_folder_is_refused_without_blocking(store: RecordStore, omop: Path):
    os.mkfifo(omop / "DEATH.csv")
    (problem,) = problems_of(load_omop, store, omop)
    assert problem.file == "DEATH.csv"
    assert "named pipe" in problem.message
