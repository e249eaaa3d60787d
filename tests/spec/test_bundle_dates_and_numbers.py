"""Every date and number a bundle loads is one Python and every aggregate can hold.

Dates: years 0001-9999 from CSV and Parquet alike; Parquet's timestamp units (pandas writes
nanoseconds), date32/date64 and dictionary-encoded text load; digits below a microsecond are
truncated and leap seconds kept as second 59.999999, both counted in the load report. Numbers:
finite and no larger than 1e15.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from tests.helpers import load_problems, only, set_labs


def lab_times(store: RecordStore) -> dict[str, dt.datetime]:
    rows = store.connection.execute("SELECT lab_id, time FROM labs").fetchall()
    return {str(lab_id): time for lab_id, time in rows}


def write_labs_parquet(bundle: Path, times: pa.Array) -> None:
    (bundle / "labs.csv").unlink(missing_ok=True)
    pq.write_table(
        pa.table(
            {
                "lab_id": [f"L{i}" for i in range(1, len(times) + 1)],
                "patient_id": ["A"] * len(times),
                "time": times,
                "analyte_name": ["Creatinine"] * len(times),
                "value_num": [1.0] * len(times),
            }
        ),
        bundle / "labs.parquet",
    )


@pytest.mark.parametrize(
    ("table", "text", "row", "column"),
    [
        ("patients", "patient_id,birth_date\nA,1950-01-01\nB,0000-06-15\n", 2, "birth_date"),
        (
            "events",
            "event_id,patient_id,start_time,kind,label\nE1,A,0000-01-01 10:00,other,x\n",
            1,
            "start_time",
        ),
    ],
)
def test_year_zero_in_a_csv_is_refused_naming_file_row_and_column(
    store: RecordStore, two_patients: Path, table: str, text: str, row: int, column: str
):
    (two_patients / f"{table}.csv").write_text(text)
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == (f"{table}.csv", row, column)
    assert "outside the years 0001-9999" in problem.message
    assert "0000-" in problem.message


def test_a_pandas_nanosecond_timestamp_column_loads(store: RecordStore, two_patients: Path):
    write_labs_parquet(two_patients, pa.array([dt.datetime(2020, 1, 4, 8, 0)], pa.timestamp("ns")))
    report = load_bundle(store, two_patients)
    assert lab_times(store) == {"L1": dt.datetime(2020, 1, 4, 8, 0)}
    assert report.warnings == []


def test_nanoseconds_are_truncated_to_microseconds_and_counted(
    store: RecordStore, two_patients: Path
):
    write_labs_parquet(
        two_patients,
        pa.array([1_577_836_800_123_456_789, 1_577_836_800_000_000_000], pa.timestamp("ns")),
    )
    report = load_bundle(store, two_patients)
    assert lab_times(store) == {
        "L1": dt.datetime(2020, 1, 1, 0, 0, 0, 123456),
        "L2": dt.datetime(2020, 1, 1),
    }
    assert report.warnings == [
        "labs.parquet, column 'time': 1 value(s) had digits below a microsecond; "
        "stored truncated to microseconds"
    ]


def test_csv_fractions_below_a_microsecond_are_truncated_and_counted(
    store: RecordStore, two_patients: Path
):
    set_labs(two_patients, "L1,A,2020-01-01 08:00:00.1234567,,Creatinine,1.2,,mg/dL,,,")
    report = load_bundle(store, two_patients)
    assert lab_times(store) == {"L1": dt.datetime(2020, 1, 1, 8, 0, 0, 123456)}
    assert "1 value(s) had digits below a microsecond" in report.warnings[0]


def test_every_parquet_timestamp_unit_loads(two_patients: Path):
    for unit in ("ns", "us", "ms", "s"):
        write_labs_parquet(
            two_patients, pa.array([dt.datetime(2020, 1, 4, 8, 0)], pa.timestamp(unit))
        )
        with connect() as store:
            load_bundle(store, two_patients)
            assert lab_times(store) == {"L1": dt.datetime(2020, 1, 4, 8, 0)}, unit


def test_date32_date64_nanosecond_and_dictionary_encoded_columns_load(
    store: RecordStore, tmp_path: Path
):
    pq.write_table(
        pa.table(
            {
                "patient_id": pa.array(["A", "B"]).dictionary_encode(),
                "sex": pa.array(["female", "male"]).dictionary_encode(),
                "birth_date": pa.array([dt.date(1950, 1, 1), dt.date(1960, 6, 15)], pa.date64()),
                "death_date": pa.array([dt.date(2020, 1, 1), None], pa.date32()),
            }
        ),
        tmp_path / "patients.parquet",
    )
    # pandas writes a column of dates as datetime64[ns] at midnight.
    pq.write_table(
        pa.table(
            {
                "event_id": pa.array(["E1"]).dictionary_encode(),
                "patient_id": ["A"],
                "start_time": pa.array([dt.datetime(2019, 3, 1)], pa.timestamp("ns")),
                "kind": pa.array(["diagnosis"]).dictionary_encode(),
                "label": ["Myeloma"],
            }
        ),
        tmp_path / "events.parquet",
    )
    load_bundle(store, tmp_path)
    assert store.connection.execute("SELECT * EXCLUDE (source_id) FROM patients").fetchall() == [
        ("A", "female", dt.date(1950, 1, 1), dt.date(2020, 1, 1)),
        ("B", "male", dt.date(1960, 6, 15), None),
    ]
    events = store.connection.execute("SELECT event_id, start_time, kind FROM events").fetchall()
    assert events == [("E1", dt.datetime(2019, 3, 1), "diagnosis")]


def test_a_timestamp_with_a_time_zone_is_refused_clearly_in_every_unit(two_patients: Path):
    for unit in ("ns", "us", "ms", "s"):
        moment = pa.array([1_577_836_800], pa.timestamp("s", tz="UTC"))
        write_labs_parquet(two_patients, moment.cast(pa.timestamp(unit, tz="UTC")))
        with connect() as store:
            problem = only(load_problems(store, two_patients))
        assert (problem.file, problem.column) == ("labs.parquet", "time"), unit
        assert "time zone 'UTC' not supported" in problem.message


def test_a_leap_second_is_kept_as_the_minutes_last_microsecond_and_counted(
    store: RecordStore, two_patients: Path
):
    set_labs(
        two_patients,
        "L1,A,2016-12-31 23:59:60,,Creatinine,1.2,,mg/dL,,,",
        "L2,A,2016-12-31T23:59:60.5,,Creatinine,1.3,,mg/dL,,,",
        "L3,A,2017-01-01 00:00:00,,Creatinine,1.4,,mg/dL,,,",
    )
    report = load_bundle(store, two_patients)
    last = dt.datetime(2016, 12, 31, 23, 59, 59, 999999)
    assert lab_times(store) == {"L1": last, "L2": last, "L3": dt.datetime(2017, 1, 1)}
    assert report.warnings == [
        "labs.csv, column 'time': 2 leap second(s) (second 60) stored as second 59.999999"
    ]

    set_labs(two_patients, "L1,A,2016-12-31 23:59:61,,Creatinine,1.2,,mg/dL,,,")
    with connect() as fresh:
        problem = only(load_problems(fresh, two_patients))
    assert (problem.row, problem.column) == (1, "time")  # only 60 is a leap second


@pytest.mark.parametrize("value", ["1e308", "-1e16"])
def test_numbers_beyond_any_measurement_are_refused(
    store: RecordStore, two_patients: Path, value: str
):
    set_labs(two_patients, f"L1,A,2020-01-01,,Base excess,{value},,mmol/L,,,")
    problem = only(load_problems(store, two_patients))
    assert (problem.file, problem.row, problem.column) == ("labs.csv", 1, "value_num")
    assert "number beyond ±1e15, larger than any measurement" in problem.message


def test_a_huge_reference_limit_in_parquet_is_refused(store: RecordStore, two_patients: Path):
    (two_patients / "labs.csv").unlink()
    pl.DataFrame(
        {
            "lab_id": ["L1"],
            "patient_id": ["A"],
            "time": [dt.datetime(2020, 1, 1)],
            "analyte_name": ["Creatinine"],
            "value_num": [1.0],
            "ref_high": [2.0**70],
        }
    ).write_parquet(two_patients / "labs.parquet")
    problem = only(load_problems(store, two_patients))
    assert (problem.row, problem.column) == (1, "ref_high")


def test_numbers_up_to_1e15_load_and_their_aggregates_stay_finite(
    store: RecordStore, two_patients: Path
):
    set_labs(
        two_patients,
        "L1,A,2020-01-01,,Base excess,1e15,,mmol/L,,,",
        "L2,A,2020-01-02,,Base excess,-1e15,,mmol/L,,,",
        "L3,A,2020-01-03,,Base excess,1e15,,mmol/L,,,",
    )
    load_bundle(store, two_patients)
    (mean, deviation) = store.connection.execute(
        "SELECT avg(value_num), stddev(value_num) FROM labs"
    ).fetchall()[0]
    assert mean == pytest.approx(1e15 / 3) and math.isfinite(deviation)

    set_labs(two_patients, "L1,A,2020-01-01,,Base excess,1.0000001e15,,mmol/L,,,")
    with connect() as fresh:
        problem = only(load_problems(fresh, two_patients))
    assert (problem.row, problem.column) == (1, "value_num")
