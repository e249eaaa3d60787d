"""search_documents over the tool fixture: notation, synonyms, filters, errors."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.errors import ToolError
from recordagent.records.scope import PatientScope
from recordagent.tools import SEARCH_DOCUMENTS, SearchDocumentsInput, search_documents


def top_documents(scope: PatientScope, query: str, **kw: object) -> list[str]:
    result = search_documents(scope, SearchDocumentsInput(query=query, **kw))
    return list(dict.fromkeys(hit.document_id for hit in result.hits))


def test_clinical_notation_is_searchable(scope_a: PatientScope):
    assert top_documents(scope_a, "del(17p)")[0] == "A-D1"
    assert top_documents(scope_a, "t(4;14)")[0] == "A-D1"
    assert top_documents(scope_a, "IgG-κ")[0] == "A-D2"
    assert top_documents(scope_a, "IgG kappa")[0] == "A-D2"  # κ and kappa are one term
    assert top_documents(scope_a, "0.3 g/dL")[0] == "A-D3"


@pytest.mark.parametrize(
    ("query", "document"),
    [
        ("VGPR", "A-D3"),  # written out as 'very good partial response'
        ("lenalidomide maintenance", "A-D3"),  # written as 'Revlimid maintenance'
        ("autologous stem cell transplant", "A-D2"),  # written as 'ASCT'
        ("TP53 deletion", "A-D2"),  # '17p deletion' in the board, 'del(17p)' in the report
        ("PD relapse", "A-D4"),  # 'Progressive disease'
    ],
)
def test_synonyms_and_abbreviations_meet(scope_a: PatientScope, query: str, document: str):
    assert document in top_documents(scope_a, query)[:2]


def test_hits_carry_ids_scores_snippets_and_citations(scope_a: PatientScope):
    result = search_documents(scope_a, SearchDocumentsInput(query="del(17p) detected", k=2))
    best = result.hits[0]
    assert (best.document_id, best.date, best.type) == (
        "A-D1",
        dt.date(2020, 1, 5),
        "pathology report",
    )
    assert best.chunk_id.startswith("A-D1:")
    assert "del(17p): detected" in best.snippet
    assert result.hits[0].score >= result.hits[-1].score > 0
    assert [c.id for c in result.citations] == [h.chunk_id for h in result.hits]


def test_date_and_type_filters(scope_a: PatientScope):
    assert top_documents(scope_a, "myeloma lenalidomide", start=dt.date(2021, 1, 1)) == ["A-D4"]
    assert top_documents(scope_a, "lenalidomide", end=dt.date(2020, 12, 31)) == ["A-D3"]
    assert top_documents(scope_a, "detected", document_types=["pathology report"]) == ["A-D1"]


def test_never_returns_another_patients_documents(scope_a: PatientScope):
    # B's report is the only one with 't(4;14): detected in 60%'.
    for query in ["t(4;14) detected 60%", "B-D1", "' OR 1=1 --", "patient_id = 'B'"]:
        result = search_documents(scope_a, SearchDocumentsInput(query=query, k=50))
        assert all(hit.document_id.startswith("A-") for hit in result.hits)


def test_no_match_says_so(scope_a: PatientScope, tokenizer):
    result = search_documents(scope_a, SearchDocumentsInput(query="carfilzomib"))
    assert result.hits == []
    assert "No document matches 'carfilzomib'" in result.render(tokenizer, 100)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": "the of and"}, "no searchable words"),
        ({"query": "x", "document_types": ["letter"]}, "its types are: outpatient visit note"),
        ({"query": "x", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"query": "x", "start": "2021-01-01", "end": "2020-01-01"}, "start is after end"),
        ({"query": "   "}, "query is blank"),
    ],
)
def test_bad_arguments_are_corrective_tool_errors(
    scope_a: PatientScope, arguments: dict[str, object], message: str
):
    with pytest.raises(ToolError, match="search_documents") as caught:
        SEARCH_DOCUMENTS.run(scope_a, arguments)
    assert message in str(caught.value)


def test_corrective_text_reads_as_plain_words(scope_a: PatientScope):
    with pytest.raises(ToolError) as caught:
        SEARCH_DOCUMENTS.run(scope_a, {"query": "x", "start": "2021-01-01", "end": "2020-01-01"})
    assert str(caught.value) == "search_documents: arguments: start is after end"
