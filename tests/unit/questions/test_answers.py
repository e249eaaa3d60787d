"""Answer specs, the final-answer schema per answer type, and value coercion."""

from __future__ import annotations

import datetime as dt
from typing import get_args

import pytest
from pydantic import ValidationError

from recordagent.questions import AnswerSpec, EvalItem, coerce_value, final_answer_model
from recordagent.questions.answer_types import ANSWER_KINDS, AnswerType


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        (AnswerSpec(type="date"), "2020-06-15", "June 2020"),
        (AnswerSpec(type="number", unit="g/dL"), 3.2, "a lot"),
        (AnswerSpec(type="count"), 3, -1),
        (AnswerSpec(type="boolean"), True, "perhaps"),
        (AnswerSpec(type="category", allowed=("IgG", "IgA", "light chain")), "IgA", "IgM"),
        (AnswerSpec(type="list", allowed=("del(17p)", "t(4;14)")), ["t(4;14)"], ["t(11;14)"]),
    ],
)
def test_the_final_answer_schema_types_the_value(spec, good, bad):
    schema = final_answer_model(spec)
    base = {"status": "answered", "text": "t", "citations": ["D-1:0"]}
    parsed = schema.model_validate(base | {"value": good})
    assert parsed.model_dump()["status"] == "answered"
    with pytest.raises(ValidationError):
        schema.model_validate(base | {"value": bad})
    with pytest.raises(ValidationError):
        schema.model_validate(base | {"value": good, "status": "maybe"})
    # A stray key is not worth failing an answer for.
    assert "extra" not in schema.model_validate(base | {"value": good, "extra": 1}).model_dump()


@pytest.mark.parametrize(
    ("spec", "loose", "strict"),
    [
        (AnswerSpec(type="category", allowed=("IgG", "IgA")), "igg", "IgG"),
        (AnswerSpec(type="date"), "2020-06-15T10:30:00", dt.date(2020, 6, 15)),
        (AnswerSpec(type="date"), "2020-06-15 10:30", dt.date(2020, 6, 15)),
        (AnswerSpec(type="number", unit="g/dL"), "1.5 g/dL", 1.5),
        (AnswerSpec(type="number", unit="g/dL"), " 1.5 ", 1.5),
        (AnswerSpec(type="count"), "3", 3),
        (AnswerSpec(type="list", allowed=("del(17p)", "t(4;14)")), "DEL(17P)", ["del(17p)"]),
        (AnswerSpec(type="list"), None, []),
        (AnswerSpec(type="date"), "unknown", None),
    ],
)
def test_loose_but_unambiguous_answers_are_accepted(spec, loose, strict):
    schema = final_answer_model(spec)
    parsed = schema.model_validate(
        {"status": "Answered", "value": loose, "text": None, "citations": [3, {"id": "D-1"}, {}]}
    )
    assert coerce_value(spec, parsed.model_dump()["value"]) == strict
    assert parsed.model_dump()["status"] == "answered" and parsed.model_dump()["text"] == ""
    assert parsed.model_dump()["citations"] == ["3", "D-1"]


@pytest.mark.parametrize(
    ("spec", "wrong"),
    [
        (AnswerSpec(type="number", unit="g/dL"), "1.5 g/L"),  # another unit: not converted
        (AnswerSpec(type="number"), "about 2"),
        (AnswerSpec(type="date"), "15 June 2020"),
        (AnswerSpec(type="category", allowed=("IgG", "IgA")), "IgM"),
    ],
)
def test_loose_forms_that_would_need_guessing_are_refused(spec, wrong):
    schema = final_answer_model(spec)
    with pytest.raises(ValidationError):
        schema.model_validate({"status": "answered", "value": wrong, "text": "", "citations": []})


def test_the_schema_describes_the_answer_for_the_model():
    schema = final_answer_model(
        AnswerSpec(type="number", unit="g/dL", description="Serum M-protein at diagnosis.")
    ).model_json_schema()
    assert set(schema["required"]) == {"status", "value", "text", "citations"}
    value = schema["properties"]["value"]["description"]
    assert "Serum M-protein at diagnosis." in value and "g/dL" in value
    category = final_answer_model(AnswerSpec(type="category", allowed=("IgG", "IgA")))
    assert "IgG, IgA" in category.model_json_schema()["properties"]["value"]["description"]


def test_coerce_value_gives_typed_values():
    assert coerce_value(AnswerSpec(type="date"), "2020-06-15") == dt.date(2020, 6, 15)
    assert coerce_value(AnswerSpec(type="number"), "3.5") == 3.5
    assert coerce_value(AnswerSpec(type="count"), 2) == 2
    assert coerce_value(AnswerSpec(type="list"), None) == []
    assert coerce_value(AnswerSpec(type="text"), None) is None
    with pytest.raises(ValueError, match="is not a date answer"):
        coerce_value(AnswerSpec(type="date"), "soon")
    with pytest.raises(ValueError, match="is not a count answer"):
        coerce_value(AnswerSpec(type="count"), 2.5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "category"}, "needs its allowed values"),
        ({"type": "date", "allowed": ("a",)}, "apply to categories and lists"),
        ({"type": "count", "unit": "g"}, "a unit applies to numbers"),
        ({"type": "datetime"}, "Input should be"),
    ],
)
def test_inconsistent_specs_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        AnswerSpec(**fields)


def test_ad_hoc_items_have_stable_ids():
    one = EvalItem.ad_hoc("A", "When was the ASCT?")
    assert one.id == EvalItem.ad_hoc("A", "When was the ASCT?").id
    assert one.id != EvalItem.ad_hoc("B", "When was the ASCT?").id
    assert one.answer.type == "text" and one.id.startswith("ad-hoc/A/")


def test_one_final_answer_class_per_spec_and_schemas_are_fresh_copies():
    from recordagent.llm.client import json_schema

    date = final_answer_model(AnswerSpec(type="date"))
    assert final_answer_model(AnswerSpec(type="date")) is date
    assert final_answer_model(AnswerSpec(type="number", unit="g/dL")) is not date
    schema = json_schema(date)
    assert schema == date.model_json_schema()
    schema["properties"].clear()  # a caller's change must not reach the next caller
    assert json_schema(date) == date.model_json_schema()


def test_every_answer_type_has_one_table_entry_and_the_spec_schema_lists_it():
    assert list(ANSWER_KINDS) == list(get_args(AnswerType))
    assert all(kind.name == name for name, kind in ANSWER_KINDS.items())
    listed = AnswerSpec.model_json_schema()["properties"]["type"]["description"]
    assert all(kind.summary in listed for kind in ANSWER_KINDS.values())
