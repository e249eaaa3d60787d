"""The agent's record skeleton describes any record: kinds with counts always, the events that
matter first when they do not all fit, and a count of the rest with a pointer to get_timeline."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest

from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.runners.agent import record_skeleton
from tests.helpers import write_csv

TOKENIZER = Tokenizer()


def event(event_id: str, kind: str, start: str, label: str, end: str | None = None) -> dict:
    return {
        "event_id": event_id,
        "patient_id": "P",
        "start_time": start,
        "end_time": end,
        "kind": kind,
        "label": label,
        "detail": None,
    }


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    """Hundreds of routine events around a few that frame the course."""
    bundle = tmp_path_factory.mktemp("busy")
    write_csv(bundle, "patients", [{"patient_id": "P", "sex": "male", "birth_date": "1950-01-01"}])
    day = dt.date(2015, 1, 1)
    # The events with an end come first: write_csv infers column types from the first rows.
    rows = [
        event("ADM1", "admission", "2015-03-01", "Emergency admission", end="2015-03-09"),
        event("TX1", "therapy", "2015-04-01", "Regimen A", end="2015-09-30"),
        event("DEATH", "death", "2016-01-01", "Death"),
    ]
    rows += [
        event(f"MED{n}", "medication", f"{day + dt.timedelta(days=n)}", f"Drug {n % 7}")
        for n in range(300)
    ]
    rows += [
        event(f"ENC{n}", "encounter", f"{day + dt.timedelta(days=3 * n)}", "Office visit")
        for n in range(100)
    ]
    rows += [
        event(f"DX{n}", "diagnosis", f"{day + dt.timedelta(days=30 * n)}", f"Condition {n % 4}")
        for n in range(12)
    ]
    write_csv(bundle, "events", rows)
    with connect() as store:
        load_bundle(store, bundle)
        yield store


@pytest.fixture
def scope_p(busy: RecordStore) -> PatientScope:
    return busy.scope("P")


def bracketed_ids(text: str) -> set[str]:
    return set(re.findall(r"\[([A-Z]+\d*)\]", text))


def test_the_skeleton_counts_event_kinds_with_their_spans(scope_a: PatientScope):
    text, _ = record_skeleton(scope_a, TOKENIZER, 2_500)
    assert (
        "Event kinds: therapy ×2 (2020-01-20 … 2021-06-20); diagnosis ×1 (2020-01-05); "
        "transplant ×1 (2020-06-15)"
    ) in text
    assert "Events in date order:" in text and "not shown" not in text.split("Lab analytes")[0]


def test_a_cut_event_list_keeps_the_kind_counts_and_says_what_it_left_out(scope_p):
    text, refs = record_skeleton(scope_p, TOKENIZER, 800)
    assert "Event kinds: medication ×300" in text and "encounter ×100" in text
    assert "Events in date order (a selection; the rest are counted below):" in text
    (note,) = [line for line in text.splitlines() if "more event(s) not shown" in line]
    left_out = 415 - len(refs)
    assert note.startswith(f"[{left_out} more event(s) not shown: medication ×")
    assert "get_timeline" in note
    assert TOKENIZER.count(text) <= 800


def test_a_cut_event_list_shows_the_course_and_distinct_diagnoses_first(scope_p):
    _, refs = record_skeleton(scope_p, TOKENIZER, 800)
    shown = [r.id for r in refs]
    assert {"DEATH", "TX1", "ADM1"} <= set(shown)
    # Each of the four distinct diagnoses, at its latest occurrence.
    assert {"DX11", "DX10", "DX9", "DX8"} <= set(shown)
    assert not any(i.startswith("DX") and int(i[2:]) < 8 for i in shown)


def test_the_ids_returned_are_exactly_the_events_shown(scope_p):
    for budget in (300, 800, 2_500):
        text, refs = record_skeleton(scope_p, TOKENIZER, budget)
        assert {r.id for r in refs} == bracketed_ids(text)
        assert all(r.kind == "event" for r in refs)


def test_shown_events_are_in_date_order(scope_p):
    text, refs = record_skeleton(scope_p, TOKENIZER, 1_200)
    lines = [line for line in text.splitlines() if line.endswith("]") and line[:4].isdigit()]
    assert len(lines) == len(refs) and lines == sorted(lines, key=lambda line: line[:10])


def test_as_of_leaves_later_events_out_of_the_counts_too(scope_p):
    text, refs = record_skeleton(scope_p, TOKENIZER, 2_500, until=dt.date(2015, 2, 1))
    assert "therapy" not in text and "death" not in text and "admission" not in text
    assert "Event kinds: medication ×32" in text
    assert all(not r.id.startswith(("TX", "DEATH", "ADM")) for r in refs)


def test_a_record_without_events_or_documents_says_so(tmp_path):
    write_csv(tmp_path / "b", "patients", [{"patient_id": "E", "sex": None, "birth_date": None}])
    with connect() as store:
        load_bundle(store, tmp_path / "b")
        text, refs = record_skeleton(store.scope("E"), TOKENIZER, 2_500)
    assert "Event kinds: none" in text and "Documents: none." in text and refs == []
