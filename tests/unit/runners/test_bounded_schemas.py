"""The schemas the model fills are bounded, and the bounds go out with the JSON schema, so that a
grammar-enforcing server (llama.cpp) stops a small model before it fills max_tokens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recordagent.llm.client import json_schema
from recordagent.questions import AnswerSpec
from recordagent.questions.answers import (
    MAX_CITATIONS,
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    coerce_value,
    final_answer_model,
)
from recordagent.runners.agent import Plan, Reflection
from recordagent.runners.agent.state import MAX_NEED_CHARS, MAX_NEXT_STEP_CHARS, MAX_PLAN_NEEDS
from recordagent.runners.iterative import MAX_QUERY_CHARS, step_model
from tests.helpers import asct_item


def _value_schema(schema: dict, name: str = "value") -> dict:
    node = schema["properties"][name]
    return next((o for o in node.get("anyOf", [node]) if o.get("type") != "null"), node)


def test_the_final_answer_schema_bounds_its_citations_and_text():
    schema = json_schema(final_answer_model(AnswerSpec(type="date")))
    citations = schema["properties"]["citations"]
    assert citations["maxItems"] == MAX_CITATIONS == 20
    assert citations["items"]["maxLength"] == MAX_ID_CHARS
    assert schema["properties"]["text"]["maxLength"] == MAX_TEXT_CHARS == 1_500


def test_free_text_and_list_values_are_bounded_in_the_answer_schema_only():
    text = json_schema(final_answer_model(AnswerSpec(type="text")))
    assert _value_schema(text)["maxLength"] == MAX_TEXT_CHARS
    listed = json_schema(final_answer_model(AnswerSpec(type="list")))
    assert listed["properties"]["value"]["maxItems"] == MAX_LIST_ITEMS
    assert listed["properties"]["value"]["items"]["maxLength"] == 300
    chosen = json_schema(final_answer_model(AnswerSpec(type="list", allowed=("a", "b"))))
    assert chosen["properties"]["value"]["maxItems"] == MAX_LIST_ITEMS
    assert chosen["properties"]["value"]["items"]["enum"] == ["a", "b"]
    # Values read back from logs and labels are not bounded.
    long = "x" * (MAX_TEXT_CHARS + 10)
    assert coerce_value(AnswerSpec(type="text"), long) == long
    assert len(coerce_value(AnswerSpec(type="list"), ["v"] * 80)) == 80


def test_an_unenforcing_server_that_sends_too_much_is_cut_not_failed():
    model = final_answer_model(AnswerSpec(type="date"))
    answer = model.model_validate(
        {
            "status": "answered",
            "value": "2020-06-15",
            "text": "t" * 2_000,
            "citations": [f"E-{k}" for k in range(30)] + ["x" * 200],
        }
    )
    assert len(answer.text) == MAX_TEXT_CHARS
    assert answer.citations == [f"E-{k}" for k in range(MAX_CITATIONS)]


def test_the_plan_and_the_reflection_are_bounded():
    plan = json_schema(Plan)["properties"]["needs"]
    assert plan["maxItems"] == MAX_PLAN_NEEDS == 8 and plan["minItems"] == 1
    assert plan["items"]["maxLength"] == MAX_NEED_CHARS == 300
    reflection = json_schema(Reflection)
    assert reflection["properties"]["needs"]["maxItems"] >= MAX_PLAN_NEEDS
    assert _value_schema(reflection, "next_step")["maxLength"] == MAX_NEXT_STEP_CHARS == 500
    need = reflection["$defs"]["CheckedNeed"]["properties"]
    assert need["need"]["maxLength"] == MAX_NEED_CHARS
    assert need["evidence"]["maxItems"] == 20 and need["evidence"]["items"]["maxLength"] == 128
    with pytest.raises(ValidationError):
        Plan(needs=[f"need {k}" for k in range(MAX_PLAN_NEEDS + 1)])
    with pytest.raises(ValidationError):
        Reflection(needs=[], next_step="n" * (MAX_NEXT_STEP_CHARS + 1))
    # The state's needs (the question itself when nothing was planned) are not bounded.
    from recordagent.runners.agent import EvidenceNeed

    assert EvidenceNeed(need="q" * 1_000).need == "q" * 1_000


def test_the_iterative_decision_is_bounded():
    schema = json_schema(step_model(asct_item()))
    assert _value_schema(schema, "query")["maxLength"] == MAX_QUERY_CHARS == 300
    answer = schema["$defs"]["FinalAnswer"]["properties"]
    assert answer["citations"]["maxItems"] == MAX_CITATIONS
