"""record_overview: what a record holds, and the entries that matter, for any source."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.overview import (
    events_by_importance,
    kind_count,
    record_overview,
)
from recordagent.records.schema import Event
from tests.helpers import FIXTURES, write_csv


@pytest.fixture(scope="module")
def tool_store() -> Iterator[RecordStore]:
    with connect() as store:
        load_bundle(store, FIXTURES / "tool_patients")
        yield store


@pytest.fixture(scope="module")
def two_store() -> Iterator[RecordStore]:
    with connect() as store:
        load_bundle(store, FIXTURES / "two_patients")
        yield store


def event(event_id: str, kind: str, start: str, label: str, **more: object) -> dict[str, object]:
    return {
        "event_id": event_id,
        "patient_id": "P",
        "start_time": start,
        "end_time": more.get("end"),
        "kind": kind,
        "code": more.get("code"),
        "label": label,
        "detail": more.get("detail"),
    }


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    """A general-medicine record: many diagnoses (some restated), encounters, medications."""
    bundle: Path = tmp_path_factory.mktemp("busy")
    write_csv(bundle, "patients", [{"patient_id": "P", "sex": "male", "birth_date": "1970-01-01"}])
    rows = [
        # One admission's codes share a time; the ids carry the coder's sequence (2 before 10).
        *(
            event(f"DX-7-{n}", "diagnosis", "2021-03-01 10:00", f"Condition {n}")
            for n in (10, 2, 1)
        ),
        *(event(f"DX-{y}-1", "diagnosis", f"{y}-01-01", "Hypertension") for y in range(2010, 2016)),
        *(
            event(f"DXS{n}", "diagnosis", f"2005-0{n}-01", f"Old condition {n}")
            for n in range(1, 8)
        ),
        *(event(f"ENC{n}", "encounter", f"2019-01-{n:02d}", "Office visit") for n in range(1, 13)),
        *(event(f"MED{n}", "medication", f"2020-02-{n:02d}", "Metformin") for n in range(1, 6)),
        event("ADM1", "admission", "2021-03-01 10:00", "Emergency admission", end="2021-03-05"),
        event("T1", "therapy", "2020-01-01", "Regimen A", end="2020-06-30", detail="line 1"),
        event("T2", "therapy", "2020-08-01", "Regimen B", end="2022-01-31", detail="line 2"),
        event("X1", "death", "2022-02-01", "Death"),
    ]
    write_csv(bundle, "events", rows)
    with connect() as store:
        load_bundle(store, bundle)
        yield store


def test_the_overview_counts_every_kind_and_names_diagnoses_lines_and_milestones(tool_store):
    overview = record_overview(tool_store.scope("A"))
    assert [(k.kind, k.count) for k in overview.event_kinds] == [
        ("therapy", 2),
        ("diagnosis", 1),
        ("transplant", 1),
    ]
    therapy = overview.event_kinds[0]
    assert (therapy.first.date(), therapy.last.date()) == (
        dt.date(2020, 1, 20),
        dt.date(2021, 6, 20),
    )
    assert (
        overview.event_count == 4 and overview.therapy_count == 2 and overview.diagnosis_count == 1
    )
    (myeloma,) = overview.recent_diagnoses
    assert (myeloma.label, myeloma.code, myeloma.event_id) == ("Multiple myeloma", "C90.0", "EA1")
    assert [(e.label, e.detail) for e in overview.therapy_lines] == [
        ("VRd", "line 1"),
        ("Dara-Pd", "line 2"),
    ]
    assert [e.event_id for e in overview.milestones] == ["EA3"] and overview.milestone_count == 1
    assert [(d.type, d.count) for d in overview.document_types] == [
        ("outpatient visit note", 2),
        ("pathology report", 1),
        ("tumour board protocol", 1),
    ]
    assert (overview.document_count, overview.labs.value_count, overview.labs.analyte_count) == (
        4,
        11,
        3,
    )
    assert overview.first == dt.datetime(2020, 1, 4, 8, 0)
    assert overview.last == dt.datetime(2021, 6, 20)


def test_a_record_without_diagnoses_or_lines_has_empty_blocks_not_guesses(two_store):
    overview = record_overview(two_store.scope("B"))
    assert [(k.kind, k.count) for k in overview.event_kinds] == [("admission", 1)]
    assert overview.recent_diagnoses == () and overview.diagnosis_count == 0
    assert overview.therapy_lines == () and overview.milestones == ()
    assert [(d.type, d.count) for d in overview.document_types] == [("discharge summary", 1)]
    assert overview.labs.value_count == 2 and not overview.is_empty


def test_the_overview_sees_only_its_patient(two_store):
    a, b = record_overview(two_store.scope("A")), record_overview(two_store.scope("B"))
    assert a.patient_id == "A" and {k.kind for k in a.event_kinds} == {"diagnosis", "therapy"}
    assert b.recent_diagnoses == () and a.labs.value_count == 3 and b.labs.value_count == 2


def test_until_leaves_out_later_entries_and_shows_a_running_line_as_ongoing(tool_store):
    overview = record_overview(tool_store.scope("A"), until=dt.date(2020, 3, 1))
    assert overview.until == dt.date(2020, 3, 1)
    assert {k.kind: k.count for k in overview.event_kinds} == {"diagnosis": 1, "therapy": 1}
    (line,) = overview.therapy_lines
    assert line.label == "VRd" and line.end is None and line.ongoing_on == dt.date(2020, 3, 1)
    assert (
        overview.milestones == ()
        and overview.labs.value_count == 5
        and overview.document_count == 2
    )
    assert overview.last is not None and overview.last.date() <= dt.date(2020, 3, 1)


def test_long_lists_are_capped_and_totals_say_how_many_were_left_out(busy_store):
    overview = record_overview(busy_store.scope("P"), top=4)
    assert overview.diagnosis_count == 3 + 1 + 7
    assert len(overview.recent_diagnoses) == 4 and len(overview.frequent_diagnoses) == 4
    kinds = {k.kind: k.count for k in overview.event_kinds}
    assert kinds == {
        "diagnosis": 16,
        "encounter": 12,
        "medication": 5,
        "therapy": 2,
        "admission": 1,
        "death": 1,
    }
    assert (
        overview.event_count == 37 and overview.therapy_count == 2 and overview.milestone_count == 1
    )


def test_recent_diagnoses_are_distinct_latest_first_in_the_sources_sequence(busy_store):
    overview = record_overview(busy_store.scope("P"))
    recent = [d.label for d in overview.recent_diagnoses]
    # Stated together: the ids' sequence numbers order them (1, 2, 10 — not '1', '10', '2').
    assert recent[:4] == ["Condition 1", "Condition 2", "Condition 10", "Hypertension"]
    assert recent.count("Hypertension") == 1
    hypertension = overview.frequent_diagnoses[0]
    assert (hypertension.label, hypertension.count) == ("Hypertension", 6)
    assert hypertension.first == dt.datetime(2010, 1, 1)
    assert hypertension.last == dt.datetime(2015, 1, 1) and hypertension.event_id == "DX-2015-1"


def test_therapy_lines_are_lines_and_medications_are_not(busy_store):
    overview = record_overview(busy_store.scope("P"))
    assert [e.event_id for e in overview.therapy_lines] == ["T1", "T2"]
    assert [e.kind for e in overview.milestones] == ["death"]
    assert all(e.kind == "therapy" for e in overview.therapy_lines)


def test_an_empty_record_is_empty(tmp_path):
    write_csv(tmp_path / "b", "patients", [{"patient_id": "E", "sex": None, "birth_date": None}])
    with connect() as store:
        load_bundle(store, tmp_path / "b")
        overview = record_overview(store.scope("E"))
    assert overview.is_empty and overview.first is None and overview.event_kinds == ()


def test_top_must_be_positive(tool_store):
    with pytest.raises(ValueError, match="top must be at least 1"):
        record_overview(tool_store.scope("A"), top=0)


def test_events_by_importance_puts_the_course_first_then_distinct_diagnoses(busy_store):
    events = busy_store.scope("P").events()
    ranked = [e.event_id for e in events_by_importance(events)]
    # Milestones, therapy lines and admissions (latest first), then each distinct diagnosis.
    assert ranked[:4] == ["X1", "ADM1", "T2", "T1"]
    assert ranked[4:8] == ["DX-7-1", "DX-7-2", "DX-7-10", "DX-2015-1"]
    assert set(ranked[8:15]) == {f"DXS{n}" for n in range(1, 8)}
    # Restated diagnoses go with the routine bulk, most recent first.
    rest = ranked[15:]
    assert rest[:5] == [f"MED{n}" for n in range(5, 0, -1)]
    assert "DX-2010-1" in rest and len(ranked) == len(events)


def test_events_by_importance_keeps_every_event_once():
    when = dt.datetime(2020, 1, 1)
    events = [
        Event(event_id=f"E{n}", patient_id="P", start_time=when, kind=k, label="x")
        for n, k in enumerate(["other", "diagnosis", "diagnosis", "progression"])
    ]
    ranked = events_by_importance(events)
    assert [e.event_id for e in ranked] == ["E3", "E1", "E0", "E2"]


def test_kind_count_reads_as_words():
    assert kind_count("diagnosis", 1) == "1 diagnosis"
    assert kind_count("diagnosis", 447) == "447 diagnoses"
    assert kind_count("encounter", 1_855) == "1,855 encounters"
    assert kind_count("other", 3) == "3 other events"
    assert kind_count("imaging", 2) == "2 imaging studies"
