"""Timestamps with a UTC offset: refused by default, converted to a zone's local time on request.

``load.convert_timezone`` (``--convert-timezone``) names an IANA zone; a bundle timestamp with
``Z`` or an offset becomes that zone's local wall-clock time, daylight saving included, and one
without an offset is taken as local time already. Expected values here come from Python's
zoneinfo, a path independent of the loader's (polars).
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recordagent.errors import UserError
from recordagent.records.db import RecordStore
from recordagent.records.load import load_bundle
from recordagent.settings import LoadSettings, Settings
from tests.helpers import load_problems, only, set_labs

BERLIN = "Europe/Berlin"


def converting(zone: str) -> Settings:
    return Settings(load=LoadSettings(convert_timezone=zone))


def lab_times(store: RecordStore) -> dict[str, dt.datetime]:
    rows = store.connection.execute("SELECT lab_id, time FROM labs").fetchall()
    return {str(lab_id): time for lab_id, time in rows}


def lab_row(lab_id: str, time: str) -> str:
    return f"{lab_id},A,{time},,Creatinine,1.0,,mg/dL,,,"


def local(text: str, zone: str) -> dt.datetime:
    """What zoneinfo says the ISO date-time ``text`` is in ``zone``, as a naive local time."""
    aware = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return aware.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)


def test_z_and_offsets_become_local_time_of_the_zone_across_daylight_saving(
    store: RecordStore, two_patients: Path
):
    given = {
        "L1": "2021-03-28T00:30:00Z",  # 01:30 CET, half an hour before clocks go forward
        "L2": "2021-03-28T01:30:00Z",  # 03:30 CEST, just after
        "L3": "2021-10-31T00:30:00Z",  # 02:30 CEST, the first pass through the repeated hour
        "L4": "2021-10-31T01:30:00Z",  # 02:30 CET, the second
        "L5": "2021-06-01 12:00+05:30",
        "L6": "2021-06-01T12:00:00.250-03:00",
        "L7": "2021-01-15T23:30+0100",
        "L8": "2021-01-15T23:30-02",
    }
    set_labs(two_patients, *(lab_row(k, v) for k, v in given.items()))
    report = load_bundle(store, two_patients, settings=converting(BERLIN))

    expected = {k: local(_iso(v), BERLIN) for k, v in given.items()}
    assert lab_times(store) == expected
    assert expected["L1"] == dt.datetime(2021, 3, 28, 1, 30)  # the reference agrees too
    assert expected["L3"] == expected["L4"] == dt.datetime(2021, 10, 31, 2, 30)
    assert report.timezone == BERLIN
    assert report.converted_timestamps == len(given)
    assert (
        f"labs.csv, column 'time': {len(given)} date-time(s) with a UTC offset converted to "
        in (" ".join(report.warnings))
    )


def test_times_without_an_offset_are_taken_as_local_time_already(
    store: RecordStore, two_patients: Path
):
    set_labs(
        two_patients,
        lab_row("L1", "2021-06-01 12:00"),
        lab_row("L2", "2021-06-01"),
        lab_row("L3", "2021-06-01T12:00Z"),
    )
    report = load_bundle(store, two_patients, settings=converting("America/Sao_Paulo"))

    assert lab_times(store) == {
        "L1": dt.datetime(2021, 6, 1, 12, 0),
        "L2": dt.datetime(2021, 6, 1),
        "L3": dt.datetime(2021, 6, 1, 9, 0),
    }
    assert report.converted_timestamps == 1


def test_random_instants_convert_as_zoneinfo_converts_them(store: RecordStore, two_patients: Path):
    rng = random.Random(7)
    zone = "America/New_York"
    given = {}
    for i in range(300):
        moment = dt.datetime(1990, 1, 1) + dt.timedelta(seconds=rng.randrange(40 * 365 * 86400))
        minutes = rng.choice([0, 60, -180, 330, 345, -570, 840, -720])
        sign = "+" if minutes >= 0 else "-"
        offset = "Z" if minutes == 0 else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        given[f"L{i}"] = f"{moment:%Y-%m-%dT%H:%M:%S}{offset}"
    set_labs(two_patients, *(lab_row(k, v) for k, v in given.items()))
    load_bundle(store, two_patients, settings=converting(zone))

    assert lab_times(store) == {k: local(v, zone) for k, v in given.items()}


def test_an_offset_is_refused_by_default_naming_the_option_that_converts_it(
    store: RecordStore, two_patients: Path
):
    set_labs(two_patients, lab_row("L1", "2021-06-01"), lab_row("L2", "2021-06-01T10:00Z"))
    problem = only(load_problems(store, two_patients))

    assert (problem.file, problem.row, problem.column) == ("labs.csv", 2, "time")
    assert "--convert-timezone ZONE" in problem.message
    assert "load.convert_timezone" in problem.message
    assert "'2021-06-01T10:00Z'" in problem.message


@pytest.mark.parametrize(
    "garbage",
    [
        "2021-06-01T12:00+25:00",
        "2021-06-01T12:00+05:75",
        "2021-06-01T12:00+05:3",
        "2021-06-01T12:00 UTC",
        "2021-06-01T12:00+05:30:00",
        "2021-06-01T12:00ZZ",
        "2021-06-01+01:00",
        "2021-06-01T12:00 CET",
    ],
)
def test_garbage_offsets_are_refused_with_their_row_even_when_converting(
    store: RecordStore, two_patients: Path, garbage: str
):
    set_labs(two_patients, lab_row("L1", "2021-06-01T12:00Z"), lab_row("L2", garbage))
    with pytest.raises(UserError) as caught:
        load_bundle(store, two_patients, settings=converting(BERLIN))
    assert "labs.csv, row 2, column 'time'" in str(caught.value)
    assert repr(garbage) in str(caught.value)
    assert store.patient_ids() == []


def test_a_local_time_in_a_daylight_saving_gap_is_kept_as_written_and_counted(
    store: RecordStore, two_patients: Path
):
    # 02:30 on 2021-03-28 does not exist in Berlin: clocks go from 02:00 to 03:00.
    set_labs(two_patients, lab_row("L1", "2021-03-28 02:30"), lab_row("L2", "2021-03-28 03:30"))
    report = load_bundle(store, two_patients, settings=converting(BERLIN))

    assert lab_times(store)["L1"] == dt.datetime(2021, 3, 28, 2, 30)
    assert any(
        "1 local time(s) fall in a daylight-saving gap of Europe/Berlin" in w
        for w in report.warnings
    )
    assert report.converted_timestamps == 0


def test_a_leap_second_with_z_keeps_its_minute_after_conversion(
    store: RecordStore, two_patients: Path
):
    set_labs(two_patients, lab_row("L1", "2016-12-31T23:59:60Z"))
    load_bundle(store, two_patients, settings=converting("UTC"))
    assert lab_times(store) == {"L1": dt.datetime(2016, 12, 31, 23, 59, 59, 999999)}


def test_event_start_and_end_are_both_converted_and_compared_as_converted(
    store: RecordStore, two_patients: Path
):
    events = two_patients / "events.csv"
    header = "event_id,patient_id,start_time,end_time,kind,label\n"
    # 10:00 and 09:15 in Berlin: in order as written, out of order once converted.
    events.write_text(header + "E1,A,2021-07-01T08:00Z,2021-07-01T09:15+00:00,admission,Ward\n")
    load_bundle(store, two_patients, settings=converting(BERLIN))
    rows = store.connection.execute("SELECT start_time, end_time FROM events").fetchall()
    assert rows == [(dt.datetime(2021, 7, 1, 10, 0), dt.datetime(2021, 7, 1, 11, 15))]

    events.write_text(header + "E1,A,2021-07-01T08:00Z,2021-07-01T09:15+02:00,admission,Ward\n")
    with pytest.raises(UserError, match="end_time is before start_time"):
        load_bundle(store, two_patients, settings=converting(BERLIN), replace=True)


def test_an_event_across_the_autumn_clock_change_is_ordered_by_its_instants(
    store: RecordStore, two_patients: Path
):
    events = two_patients / "events.csv"
    header = "event_id,patient_id,start_time,end_time,kind,label\n"
    # 00:30Z to 01:10Z: 40 minutes, but 02:30 to 02:10 in Berlin's repeated hour.
    events.write_text(
        header + "E1,A,2021-10-31T02:30+02:00,2021-10-31T02:10+01:00,procedure,Across\n"
    )
    load_bundle(store, two_patients, settings=converting(BERLIN))
    rows = store.connection.execute("SELECT start_time, end_time FROM events").fetchall()
    assert rows == [(dt.datetime(2021, 10, 31, 2, 30), dt.datetime(2021, 10, 31, 2, 10))]

    # The same local times the other way round are 80 minutes backwards.
    events.write_text(
        header + "E1,A,2021-10-31T02:30+01:00,2021-10-31T02:10+02:00,procedure,Across\n"
    )
    with pytest.raises(UserError, match="end_time is before start_time"):
        load_bundle(store, two_patients, settings=converting(BERLIN), replace=True)


def test_an_end_without_an_offset_is_compared_as_local_time(store: RecordStore, two_patients: Path):
    events = two_patients / "events.csv"
    header = "event_id,patient_id,start_time,end_time,kind,label\n"
    # Which 02:10 a local time in the repeated hour means is not known: it is taken as written.
    events.write_text(header + "E1,A,2021-10-31T02:30+02:00,2021-10-31 02:10,procedure,Local\n")
    with pytest.raises(UserError, match="end_time is before start_time"):
        load_bundle(store, two_patients, settings=converting(BERLIN))


def test_a_zone_aware_parquet_event_across_the_clock_change_is_ordered_by_its_instants(
    store: RecordStore, two_patients: Path
):
    (two_patients / "events.csv").unlink()
    start, end = (
        dt.datetime(2021, 10, 31, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2021, 10, 31, 1, 10, tzinfo=dt.UTC),
    )
    pq.write_table(
        pa.table(
            {
                "event_id": ["E1"],
                "patient_id": ["A"],
                "start_time": pa.array([start], pa.timestamp("us", tz="UTC")),
                "end_time": pa.array([end], pa.timestamp("us", tz="UTC")),
                "kind": ["procedure"],
                "label": ["Across"],
            }
        ),
        two_patients / "events.parquet",
    )
    load_bundle(store, two_patients, settings=converting(BERLIN))
    rows = store.connection.execute("SELECT start_time, end_time FROM events").fetchall()
    assert rows == [(dt.datetime(2021, 10, 31, 2, 30), dt.datetime(2021, 10, 31, 2, 10))]


def test_a_date_column_still_refuses_an_offset(store: RecordStore, two_patients: Path):
    (two_patients / "patients.csv").write_text(
        "patient_id,birth_date\nA,1950-01-01T00:00Z\nB,1960-06-15\n"
    )
    with pytest.raises(UserError, match="patients.csv, row 1, column 'birth_date'"):
        load_bundle(store, two_patients, settings=converting(BERLIN))


def test_a_zone_aware_parquet_column_is_converted_or_refused_naming_the_option(
    two_patients: Path, store: RecordStore
):
    (two_patients / "labs.csv").unlink()
    instants = [
        dt.datetime(2021, 1, 1, 12, tzinfo=dt.UTC),
        dt.datetime(2021, 7, 1, 12, tzinfo=dt.UTC),
    ]
    pq.write_table(
        pa.table(
            {
                "lab_id": ["L1", "L2"],
                "patient_id": ["A", "A"],
                "time": pa.array(instants, pa.timestamp("us", tz="Asia/Tokyo")),
                "analyte_name": ["Creatinine"] * 2,
                "value_num": [1.0, 1.1],
            }
        ),
        two_patients / "labs.parquet",
    )
    problem = only(load_problems(store, two_patients))
    assert "time zone 'Asia/Tokyo' not supported" in problem.message
    assert "--convert-timezone" in problem.message

    report = load_bundle(store, two_patients, settings=converting(BERLIN))
    assert lab_times(store) == {
        "L1": dt.datetime(2021, 1, 1, 13, 0),  # CET
        "L2": dt.datetime(2021, 7, 1, 14, 0),  # CEST
    }
    assert report.converted_timestamps == 2


def test_the_same_files_in_another_zone_are_not_an_unchanged_reload(
    store: RecordStore, two_patients: Path
):
    set_labs(two_patients, lab_row("L1", "2021-06-01T12:00Z"))
    load_bundle(store, two_patients, settings=converting(BERLIN))
    again = load_bundle(store, two_patients, settings=converting(BERLIN))
    assert again.status == "unchanged"

    with pytest.raises(UserError, match="already loaded from different files"):
        load_bundle(store, two_patients, settings=converting("Asia/Kolkata"))
    replaced = load_bundle(store, two_patients, settings=converting("Asia/Kolkata"), replace=True)
    assert replaced.status == "replaced"
    assert lab_times(store) == {"L1": dt.datetime(2021, 6, 1, 17, 30)}


@pytest.mark.parametrize("zone", ["Europe/Berln", "+01:00", "CEST", "localtime", ""])
def test_a_zone_that_is_not_an_iana_name_is_refused(zone: str):
    with pytest.raises(ValueError, match="not an IANA time zone name"):
        LoadSettings(convert_timezone=zone)


def _iso(text: str) -> str:
    """``text`` in a form ``datetime.fromisoformat`` reads (it wants ±HH:MM before 3.11's)."""
    if text[-5] in "+-" and text[-4:].isdigit():
        return f"{text[:-2]}:{text[-2:]}"
    if text[-3] in "+-" and text[-2:].isdigit():
        return f"{text}:00"
    return text
