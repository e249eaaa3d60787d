"""FHIR input the store cannot hold as written: kept faithfully when FHIR allows it, refused
with its file and line or entry otherwise, and never a traceback.

Leap seconds (which FHIR allows) become the minute's last microsecond and fractions of a second
are kept to the microsecond, both counted in the load report; numbers that are not finite or
beyond any measurement, JSON Python reads but no FHIR server writes (NaN, 5000-digit integers,
arrays nested thousands deep), and ids with invisible characters are refused. Ids are stored in
NFC, so a patient referenced in either Unicode form is one patient.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from recordagent.errors import DataLoadError, LoadProblem
from recordagent.records.db import RecordStore
from recordagent.sources.fhir import load_fhir

PATIENT = {"resourceType": "Patient", "id": "pat-1", "gender": "female"}


def observation(value: object = 10.5, when: str = "2020-01-02T08:30:00+00:00") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "code": {"text": "Hemoglobin"},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "g/dL"},
    }


def write_ndjson(folder: Path, *resources: dict[str, Any] | str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "export.ndjson"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in resources]
    path.write_text("\n".join(lines) + "\n")
    return path


def problem_of(store: RecordStore, path: Path) -> LoadProblem:
    with pytest.raises(DataLoadError) as caught:
        load_fhir(store, path)
    assert store.connection.execute("SELECT count(*) FROM sources").fetchall() == [(0,)]
    (problem,) = caught.value.problems
    return problem


def test_leap_seconds_and_fractions_keep_their_order_and_are_counted(
    store: RecordStore, tmp_path: Path
):
    leap = observation(when="2016-12-31T23:59:60Z")
    fine = {**observation(when="2016-12-31T23:59:59.1234567Z"), "id": "obs-2"}
    report = load_fhir(store, write_ndjson(tmp_path / "in", PATIENT, leap, fine))
    times = dict(store.connection.execute("SELECT lab_id, time FROM labs").fetchall())
    assert times == {
        "Observation/obs-1": dt.datetime(2016, 12, 31, 23, 59, 59, 999999),
        "Observation/obs-2": dt.datetime(2016, 12, 31, 23, 59, 59, 123456),
    }
    assert report.warnings == [
        "1 leap seconds (second 60) stored as second 59.999999",
        "1 times with digits below a microsecond stored truncated to microseconds",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"value": NaN, "unit": "g/dL"}', "finite"),
        ('{"value": 1e999, "unit": "g/dL"}', "finite"),
        ('{"value": 1e300, "unit": "g/dL"}', "beyond ±1e15"),
        ('{"value": 1' + "0" * 400 + ', "unit": "g/dL"}', "too large"),
    ],
    ids=["NaN", "overflow to inf", "huge", "400-digit integer"],
)
def test_numbers_the_store_cannot_hold_name_their_line(
    store: RecordStore, tmp_path: Path, line: str, message: str
):
    text = json.dumps(observation()).replace('{"value": 10.5, "unit": "g/dL"}', line)
    problem = problem_of(store, write_ndjson(tmp_path / "in", PATIENT, text))
    assert (problem.file, problem.row) == ("export.ndjson", 2)
    assert "Observation/obs-1" in problem.message and message in problem.message


@pytest.mark.parametrize(
    "text",
    ['{"resourceType": "Patient", "id": "p", "x": 1' + "0" * 5000 + "}", "[" * 100_000],
    ids=["5000-digit integer", "nested 100000 deep"],
)
def test_json_python_cannot_read_is_a_problem_not_a_traceback(
    store: RecordStore, tmp_path: Path, text: str
):
    problem = problem_of(store, write_ndjson(tmp_path / "in", PATIENT, text))
    assert (problem.file, problem.row) == ("export.ndjson", 2)
    assert "not valid JSON" in problem.message

    bundle = tmp_path / "bundle.json"
    bundle.write_text(text)
    problem = problem_of(store, bundle)
    assert problem.file == "bundle.json" and "not valid JSON" in problem.message


def test_a_decomposed_patient_id_is_stored_composed(store: RecordStore, tmp_path: Path):
    decomposed = {**PATIENT, "id": "Jose\u0301"}
    lab = {**observation(), "subject": {"reference": "Patient/Jose\u0301"}}
    load_fhir(store, write_ndjson(tmp_path / "in", decomposed, lab))
    assert store.patient_ids() == ["Jos\u00e9"]
    assert store.connection.execute("SELECT patient_id FROM labs").fetchall() == [("Jos\u00e9",)]


def test_an_id_with_an_invisible_character_is_refused(store: RecordStore, tmp_path: Path):
    problem = problem_of(store, write_ndjson(tmp_path / "in", {**PATIENT, "id": "pat\u200b-1"}))
    assert (problem.file, problem.row) == ("export.ndjson", 1)
    assert "U+200B" in problem.message


def test_a_named_pipe_among_the_files_is_refused_without_blocking(
    store: RecordStore, tmp_path: Path
):
    folder = tmp_path / "in"
    write_ndjson(folder, PATIENT)
    os.mkfifo(folder / "Observation.ndjson")
    problem = problem_of(store, folder)
    assert problem.file == "Observation.ndjson"
    assert "named pipe (FIFO), not a regular file" in problem.message


def test_an_attachment_holding_a_nul_byte_is_refused(store: RecordStore, tmp_path: Path):
    note = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "subject": {"reference": "Patient/pat-1"},
        "date": "2020-01-02T08:30:00Z",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": base64.b64encode(b"Note\x00text").decode(),
                }
            }
        ],
    }
    problem = problem_of(store, write_ndjson(tmp_path / "in", PATIENT, note))
    assert (problem.file, problem.row) == ("export.ndjson", 2)
    assert "NUL byte" in problem.message
