"""single_pass_rag and iterative_rag over the tool fixture, with the scripted mock model."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.llm import MockModel
from recordagent.questions import AnswerSpec
from recordagent.records.scope import PatientScope
from recordagent.runners import IterativeRag, SinglePassRag
from recordagent.settings import Settings
from tests.helpers import asct_item, final


def _prompt(model: MockModel, k: int = 0) -> str:
    return "\n".join(m.content or "" for m in model.requests[k].messages)


async def test_single_pass_retrieves_once_and_answers_once(scope_a: PatientScope, settings):
    model = MockModel([final("2020-06-15", ["A-D3:0", "EA3"])])
    answer = await SinglePassRag(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered"
    assert answer.value == dt.date(2020, 6, 15)
    assert len(model.requests) == 1
    prompt = _prompt(model)
    # The ASCT visit note and the transplant event were retrieved and shown with their ids.
    assert "[A-D3:0]" in prompt and "[EA3]" in prompt
    assert {(c.kind, c.id) for c in answer.citations} == {("chunk", "A-D3:0"), ("event", "EA3")}
    assert model.requests[0].schema_name == "FinalAnswer"
    assert [e.kind for e in answer.trace] == ["retrieval", "model_call", "answer"]
    assert answer.runner == "single_pass_rag" and answer.mock and answer.model == "mock"
    assert answer.prompt_version.startswith("rag-")
    assert answer.usage.model_calls == 1 and answer.usage.prompt_tokens > 0


async def test_lab_values_are_retrievable_as_passages(scope_a: PatientScope, settings):
    item = asct_item(
        id="mprot/A",
        question="What was the M-protein value in March 2020?",
        answer=AnswerSpec(type="number", unit="g/dL"),
    )
    model = MockModel([final(1.5, ["LABS-m-protein-1", "LA2"])])
    answer = await SinglePassRag(settings).run(item, scope_a, model)
    prompt = _prompt(model)
    assert "[LABS-m-protein-1]" in prompt and "2020-01-04 3.2 g/dL; 2020-03-01 1.5;" in prompt
    assert answer.details["lab_passages"] >= 1
    # The passage id cites the lab rows it lists; a bare lab id was never shown, so it goes.
    lab_ids = {c.id for c in answer.citations if c.kind == "lab"}
    assert {"LA1", "LA2", "LA3", "LA5", "LA6"} <= lab_ids  # LA4 duplicates LA3: shown once
    removed = [e for e in answer.trace if e.kind == "citation_removed"]
    assert removed and removed[0].refs == ["LA2"]


async def test_citations_never_shown_are_removed_and_flagged(scope_a, settings):
    model = MockModel([final("2020-06-15", ["A-D3:0", "B-D1:0", "A-D9:0"])])
    answer = await SinglePassRag(settings).run(asct_item(), scope_a, model)
    assert [c.id for c in answer.citations] == ["A-D3:0"]
    flagged = [e for e in answer.trace if e.kind == "citation_removed"]
    assert flagged[0].refs == ["B-D1:0", "A-D9:0"]


async def test_insufficient_evidence_and_failures_are_distinct(scope_a, settings):
    runner = SinglePassRag(settings)
    unknown = MockModel([final(None, [], "insufficient_evidence")])
    silent = await runner.run(asct_item(), scope_a, unknown)
    assert silent.status == "insufficient_evidence" and silent.value is None
    garbage = await runner.run(asct_item(), scope_a, MockModel(["the ASCT was in June"]))
    assert garbage.status == "failed" and garbage.value is None
    assert any(e.kind == "error" for e in garbage.trace)
    wrong_type = await runner.run(asct_item(), scope_a, MockModel([final("June", [])]))
    assert wrong_type.status == "failed"
    exhausted = await runner.run(asct_item(), scope_a, MockModel([]))
    assert exhausted.status == "failed" and "model error" in exhausted.text


async def test_as_of_hides_later_records(scope_a: PatientScope, settings):
    question = "What was the M-protein (relapse visit, Revlimid, ASCT)?"
    item = asct_item(question=question, as_of=dt.date(2020, 3, 1))
    model = MockModel([final(None, [], "insufficient_evidence")])
    answer = await SinglePassRag(settings).run(item, scope_a, model)
    prompt = _prompt(model)
    assert "as the record stood on 2020-03-01" in prompt
    assert "A-D3" not in prompt and "A-D4" not in prompt and "2020-06-01" not in prompt
    assert all(not p.startswith(("A-D3", "A-D4")) for p in answer.details["passages"])


async def test_the_context_budget_bounds_the_passages(scope_a: PatientScope):
    small = Settings(runners={"single_pass_rag": {"k": 12, "context_tokens": 200}})
    model = MockModel([final(None, [], "insufficient_evidence")])
    answer = await SinglePassRag(small).run(asct_item(), scope_a, model)
    assert 0 < answer.details["passage_tokens"] <= 200


async def test_an_item_for_another_patient_is_refused(scope_a, settings):
    with pytest.raises(ValueError, match="patient 'B'"):
        await SinglePassRag(settings).run(asct_item(patient_id="B"), scope_a, MockModel([]))


async def test_iterative_searches_again_then_answers(scope_a: PatientScope, settings):
    model = MockModel(
        [
            {"json": {"action": "search", "query": "creatinine renal function"}},
            {"json": {"action": "answer", "answer": final("2020-06-15", ["EA3"])["json"]}},
        ]
    )
    answer = await IterativeRag(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered" and answer.value == dt.date(2020, 6, 15)
    assert answer.details["queries"][1] == "<25 characters>"  # a length, never the words
    assert answer.details["rounds"] == 2
    # Round two added the creatinine passage; nothing was shown twice.
    passages = answer.details["passages"]
    assert len(passages) == len(set(passages))
    assert any(p.startswith("LABS-#") for p in passages)  # aliased: ids embed analyte names
    second = _prompt(model, 1)
    assert "[LABS-creatinine-1]" in second and second.count("[A-D3:0]") == 1
    assert [e.name for e in answer.trace if e.kind == "model_call"] == ["decide 1", "decide 2"]


async def test_iterative_ends_truncated_when_rounds_run_out(scope_a: PatientScope):
    two = Settings(runners={"iterative_rag": {"max_rounds": 2}})
    model = MockModel(
        [
            {"json": {"action": "search", "query": "melphalan"}},
            {"json": {"action": "search", "query": "stem cell"}},
            final("2020-06-15", ["EA3"]),
        ]
    )
    answer = await IterativeRag(two).run(asct_item(), scope_a, model)
    assert answer.status == "truncated"
    assert answer.value == dt.date(2020, 6, 15)  # the best answer so far is kept
    assert answer.details["rounds_exhausted"] is True
    assert model.requests[-1].schema_name == "FinalAnswer"
    assert any(e.kind == "budget" for e in answer.trace)


async def test_iterative_repeated_query_answers_without_truncation(scope_a, settings):
    model = MockModel(
        [
            {"json": {"action": "search", "query": asct_item().question.upper()}},
            final("2020-06-15", ["EA3"]),
        ]
    )
    answer = await IterativeRag(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered" and answer.details["rounds"] == 1
    assert len(model.requests) == 2


async def test_iterative_recovers_from_an_unparseable_decision(scope_a, settings):
    model = MockModel(["not json", final("2020-06-15", ["EA3"])])
    answer = await IterativeRag(settings).run(asct_item(), scope_a, model)
    assert answer.status == "answered"
    assert any(e.kind == "error" and e.name == "decide 1" for e in answer.trace)


async def test_answered_without_a_value_is_insufficient_evidence(scope_a, settings):
    model = MockModel([final(None, ["A-D3:0"])])
    answer = await SinglePassRag(settings).run(asct_item(), scope_a, model)
    assert answer.status == "insufficient_evidence"
    assert any(e.error == "answered_without_value" for e in answer.trace)


def test_every_lab_passage_states_its_unit(scope_a: PatientScope):
    from recordagent.records.tokens import Tokenizer
    from recordagent.runners import lab_passages

    passages = lab_passages(scope_a, Tokenizer(), max_tokens=40)
    mprotein = [p for p in passages if p.title.startswith("Lab results: M-protein")]
    assert len(mprotein) >= 2  # the series is split, so later passages start mid-series
    for passage in mprotein:
        assert passage.title.startswith("Lab results: M-protein, g/dL (33358-4)")
        numbers = [e for e in passage.text.split("; ") if e[11:12].isdigit()]
        assert not numbers or numbers[0].endswith(" g/dL"), passage.text
    # Catalogue synonyms are in the titles, so 'Hb' finds haemoglobin values.
    assert any("Hb" in p.title for p in passages if "Hemoglobin" in p.title)


async def test_a_lab_synonym_retrieves_the_lab_passage(scope_a: PatientScope, settings):
    item = asct_item(question="What was the lowest Hb?", answer=AnswerSpec(type="number"))
    model = MockModel([final(8.9, ["LABS-hemoglobin-1"])])
    answer = await SinglePassRag(settings).run(item, scope_a, model)
    assert any(p.startswith("LABS-#") for p in answer.details["passages"])
    cited = {c.id for c in answer.citations}
    assert cited >= {"LA10", "LA11"} and "LA9" not in cited  # LA10 corrected LA9


async def test_a_question_longer_than_the_search_accepts_is_still_answered(
    scope_a: PatientScope, settings
):
    long_question = "When was the autologous stem cell transplantation (ASCT)? " + " ".join(
        f"context{i} words about the record" for i in range(120)
    )
    assert len(long_question) > 2_000
    item = asct_item(question=long_question)
    single = await SinglePassRag(settings).run(
        item, scope_a, MockModel([final("2020-06-15", ["EA3"])])
    )
    assert single.status == "answered" and single.details["passages"]
    iterative = MockModel(
        [{"json": {"action": "answer", "answer": final("2020-06-15", ["EA3"])["json"]}}]
    )
    again = await IterativeRag(settings).run(item, scope_a, iterative)
    assert again.status == "answered"
