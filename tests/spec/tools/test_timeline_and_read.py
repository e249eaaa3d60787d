"""get_timeline and read_document over the tool fixture."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope
from recordagent.tools import (
    GET_TIMELINE,
    READ_DOCUMENT,
    GetTimelineInput,
    ReadDocumentInput,
    get_timeline,
    read_document,
)


def test_timeline_interleaves_events_and_documents(scope_a: PatientScope, tokenizer):
    result = get_timeline(scope_a, GetTimelineInput())
    assert result.render(tokenizer, 500).splitlines() == [
        "Timeline: 8 entries, page 1 of 1:",
        "2020-01-05 diagnosis: Multiple myeloma (IgG-kappa) [EA1]",
        "2020-01-05 document: pathology report: FISH report [A-D1]",
        "2020-01-10 document: tumour board protocol: Tumour board - initial diagnosis [A-D2]",
        "2020-01-20 → 2020-05-10 therapy: VRd (line 1) [EA2]",
        "2020-06-15 transplant: Autologous stem cell transplantation (high-dose melphalan) [EA3]",
        "2020-09-01 document: outpatient visit note: Outpatient visit [A-D3]",
        "2021-06-01 document: outpatient visit note: Relapse visit [A-D4]",
        "2021-06-20 therapy: Dara-Pd (line 2) [EA4]",
    ]
    assert {c.id for c in result.citations} >= {"EA1", "A-D1"}


def test_timeline_filters_by_kind_and_dates(scope_a: PatientScope):
    therapy = get_timeline(scope_a, GetTimelineInput(kinds=["therapy"]))
    assert [e.id for e in therapy.entries] == ["EA2", "EA4"]
    spring = get_timeline(scope_a, GetTimelineInput(start="2020-03-01", end="2020-07-01"))
    assert [e.id for e in spring.entries] == ["EA2", "EA3"]  # a line running into the window
    documents = get_timeline(scope_a, GetTimelineInput(kinds=["document"], start="2021-01-01"))
    assert [e.id for e in documents.entries] == ["A-D4"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kinds": ["labs"]}, "unknown kind(s) ['labs']"),
        ({"page": 2}, "page 2 does not exist; there are 1"),
        ({"start": "2021-01-01", "end": "2020-01-01"}, "start is after end"),
    ],
)
def test_timeline_errors(scope_a: PatientScope, arguments, message):
    with pytest.raises(ToolError, match="get_timeline") as caught:
        GET_TIMELINE.run(scope_a, arguments)
    assert message in str(caught.value)


def test_read_whole_document_and_one_section(scope_a: PatientScope):
    whole = read_document(scope_a, ReadDocumentInput(document_id="A-D2"))
    assert whole.text.startswith("TUMOUR BOARD\nNewly diagnosed IgG-κ multiple myeloma")
    assert (whole.page, whole.pages, whole.sections) == (1, 1, ["TUMOUR BOARD", "RECOMMENDATION"])
    assert [c.kind for c in whole.citations] == ["chunk"]
    section = read_document(
        scope_a, ReadDocumentInput(document_id="A-D2", section="recommendation")
    )
    assert section.text == "RECOMMENDATION\nTransplant-eligible. Start VRd induction, then ASCT."


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"document_id": "B-D1"},
            "no document 'B-D1' in this patient's record (ids look like 'A-D1')",
        ),
        (
            {"document_id": "A-D2", "section": "PLAN"},
            "its sections are: TUMOUR BOARD, RECOMMENDATION",
        ),
        ({"document_id": "A-D2", "page": 3}, "page 3 does not exist; A-D2 has 1"),
        ({"document_id": "' OR 1=1 --"}, "no document"),
    ],
)
def test_read_errors(scope_a: PatientScope, arguments, message):
    with pytest.raises(ToolError, match="read_document") as caught:
        READ_DOCUMENT.run(scope_a, arguments)
    assert message in str(caught.value)


def test_an_event_running_past_the_end_of_the_range_hides_its_stop_date(scope_a, tokenizer):
    result = get_timeline(scope_a, GetTimelineInput(end=dt.date(2020, 3, 1)))
    text = result.render(tokenizer, 2_000)
    assert "2020-01-20 → (ongoing on 2020-03-01) therapy: VRd (line 1) [EA2]" in text
    assert "2020-05-10" not in text
    whole = get_timeline(scope_a, GetTimelineInput()).render(tokenizer, 2_000)
    assert "2020-01-20 → 2020-05-10 therapy: VRd (line 1) [EA2]" in whole
