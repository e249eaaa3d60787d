"""Tool edge cases: empty filters, overlapping chunks, long sections, unit spellings, a changed
vocabulary."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recordagent.errors import ToolError
from recordagent.records.db import RecordStore, connect
from recordagent.records.load import load_bundle
from recordagent.settings import load_settings
from recordagent.tools import QueryLabsInput, ReadDocumentInput, default_registry, query_labs
from recordagent.tools import read_document as read


def test_empty_filters_are_corrected_not_crashes(tool_store: RecordStore):
    registry, scope = default_registry(), tool_store.scope("A")
    with pytest.raises(ToolError, match="kinds is empty"):
        registry.call(scope, "get_timeline", {"kinds": []})
    with pytest.raises(ToolError, match="document_types"):
        registry.call(scope, "search_documents", {"query": "x", "document_types": []})


@pytest.fixture
def long_document(tmp_path: Path) -> Path:
    lines = [f"Line {k}: finding number {k} is described here in some detail." for k in range(300)]
    text = "HISTORY\n" + "\n".join(lines[:150]) + "\nASSESSMENT\n" + "\n".join(lines[150:]) + "\n"
    pl.DataFrame({"patient_id": ["P"]}).write_csv(tmp_path / "patients.csv")
    pl.DataFrame(
        {
            "document_id": ["P-D1"],
            "patient_id": ["P"],
            "date": ["2020-01-01"],
            "type": ["note"],
            "title": ["long"],
            "text": [text],
        }
    ).write_parquet(tmp_path / "documents.parquet")
    return tmp_path


def test_pages_of_overlapping_chunks_rebuild_the_document_once(long_document: Path):
    with connect() as store:
        load_bundle(store, long_document, settings=load_settings("small-chunks"))
        scope = store.scope("P")
        document = scope.document("P-D1")
        assert document is not None
        first = read(scope, ReadDocumentInput(document_id="P-D1"))
        assert first.pages > 1
        pages = [
            read(scope, ReadDocumentInput(document_id="P-D1", page=k)).text
            for k in range(1, first.pages + 1)
        ]
        assert "".join(pages) == document.text


def test_a_long_section_is_paged(long_document: Path):
    with connect() as store:
        load_bundle(store, long_document)
        scope = store.scope("P")
        first = read(scope, ReadDocumentInput(document_id="P-D1", section="history"))
        assert first.pages > 1
        pages = [
            read(scope, ReadDocumentInput(document_id="P-D1", section="history", page=k)).text
            for k in range(1, first.pages + 1)
        ]
        text = "".join(pages)
        last = "Line 149: finding number 149 is described here in some detail."
        assert text.startswith("HISTORY\nLine 0:") and text.rstrip().endswith(last)


def test_unit_spellings_convert_and_unconvertible_units_are_reported(tmp_path: Path):
    pl.DataFrame({"patient_id": ["P"]}).write_csv(tmp_path / "patients.csv")
    pl.DataFrame(
        {
            "lab_id": ["L1", "L2", "L3", "L4"],
            "patient_id": ["P"] * 4,
            "time": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"],
            "analyte_name": ["Creatinine"] * 4,
            "value_num": [88.4, 88.4, 1.0, 7.0],
            "unit": ["μmol/L", "umol/l", "MG/DL", "furlongs"],
        }
    ).write_csv(tmp_path / "labs.csv")
    with connect() as store:
        load_bundle(store, tmp_path)
        result = query_labs(store.scope("P"), QueryLabsInput(analyte="creatinine"))
    assert [round(p.value or 0, 3) for p in result.points] == [1.0, 1.0, 1.0]
    assert result.groups[0].converted == {"μmol/L": 1, "umol/l": 1}  # MG/DL is mg/dL
    furlongs = result.groups[1]  # shown as reported, apart, never dropped
    assert (furlongs.unit, [p.value for p in furlongs.points]) == ("furlongs", [7.0])
    assert "Creatinine (furlongs), 1 value(s):" in "\n".join(result.lines())


def test_a_changed_vocabulary_reindexes_on_open(tmp_path: Path):
    path = tmp_path / "store.duckdb"
    with connect(path) as store:
        load_bundle(store, Path(__file__).parents[2] / "fixtures" / "tool_patients")
        store.connection.execute("UPDATE search_index SET vocabulary = 'older'")
        store.connection.execute("DELETE FROM chunk_terms WHERE term = '~vgpr'")
    with connect(path) as store:
        (digest,) = store.connection.execute(
            "SELECT DISTINCT vocabulary FROM search_index"
        ).fetchone()
        assert digest != "older"
        hits = default_registry().call(store.scope("A"), "search_documents", {"query": "VGPR"})
        assert hits.hits and hits.hits[0].document_id == "A-D3"


def test_values_a_store_holds_beyond_floating_point_give_no_infinite_aggregate(tmp_path: Path):
    pl.DataFrame({"patient_id": ["P"]}).write_csv(tmp_path / "patients.csv")
    pl.DataFrame(
        {
            "lab_id": ["L1", "L2", "L3"],
            "patient_id": ["P"] * 3,
            "time": ["2020-01-01", "2020-02-01", "2020-03-01"],
            "analyte_name": ["Glucose"] * 3,
            "value_num": [5.0, 6.0, 7.0],
            "unit": ["mmol/L"] * 3,
        }
    ).write_csv(tmp_path / "labs.csv")
    with connect() as store:
        load_bundle(store, tmp_path)
        # As a store loaded before values were bounded may hold them.
        store.connection.execute("UPDATE labs SET value_num = 1e308 WHERE lab_id = 'L2'")
        store.connection.execute("UPDATE labs SET value_num = 'inf'::DOUBLE WHERE lab_id = 'L3'")
        scope = store.scope("P")
        mean = query_labs(scope, QueryLabsInput(analyte="Glucose", aggregate="mean"))
        series = query_labs(scope, QueryLabsInput(analyte="Glucose", aggregate="series"))
    # inf is no number, nor is 1e308 mmol/L in mg/dL (x 18 overflows): the mean is of 5 mmol/L.
    assert [g.result for g in mean.groups] == [pytest.approx(90.08, abs=0.1)]
    assert [p.lab_id for g in series.groups for p in g.points] == ["L1", "L2", "L3"]
    assert not any(p.value == float("inf") for g in series.groups for p in g.points)
