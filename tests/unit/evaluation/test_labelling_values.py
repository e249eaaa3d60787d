"""Labelling sheet cells: what a clinician writes, read as a label value of the item's type."""

from __future__ import annotations

from typing import Any

import pytest

from recordagent.evaluation.labelling_values import (
    answer_format,
    parse_evidence,
    parse_flag,
    parse_value,
    value_text,
)
from recordagent.questions.answers import AnswerSpec, ScoringSpec
from recordagent.questions.items import EvalItem


def _item(kind: str, **answer: Any) -> EvalItem:
    scoring = answer.pop("scoring", ScoringSpec())
    return EvalItem(
        id=f"q/{kind}",
        patient_id="A",
        question="?",
        answer=AnswerSpec(type=kind, **answer),
        scoring=scoring,
    )


DATE = _item("date")
NUMBER = _item("number", unit="g/dL")
COUNT = _item("count")
BOOLEAN = _item("boolean")
CATEGORY = _item(
    "category",
    allowed=("IgG", "IgA", "unknown"),
    scoring=ScoringSpec(synonyms={"IgG": ("gamma",)}),
)
LIST = _item("list", allowed=("VRd", "KRd", "Dara"))
TEXT = _item("text")


@pytest.mark.parametrize(
    ("item", "cell", "value"),
    [
        (DATE, "2020-06-15", "2020-06-15"),
        (DATE, " 2020-06-15T10:30 ", "2020-06-15"),
        (NUMBER, "1.5", 1.5),
        (NUMBER, "1.5 g/dL", 1.5),
        (NUMBER, "-0.25", -0.25),
        (COUNT, "3", 3),
        (BOOLEAN, "Yes", True),
        (BOOLEAN, "n", False),
        (BOOLEAN, "FALSE", False),
        (CATEGORY, "igg", "IgG"),
        (CATEGORY, " Gamma ", "IgG"),
        (LIST, "vrd; Dara", ["VRd", "Dara"]),
        (LIST, '["KRd", "KRd"]', ["KRd"]),
        (TEXT, "  free words ", "free words"),
    ],
)
def test_a_cell_reads_as_a_value_of_the_items_type(item: EvalItem, cell: str, value: Any):
    assert parse_value(item, cell) == value


@pytest.mark.parametrize("word", ["unanswerable", "UNANSWERABLE", " Unanswerable "])
def test_only_unanswerable_in_any_case_means_the_record_does_not_say(word: str):
    assert parse_value(NUMBER, word) is None
    assert parse_value(DATE, word) is None
    assert parse_value(TEXT, word) is None


@pytest.mark.parametrize(
    ("item", "word", "says"),
    [
        (COUNT, "none", "write 0, or unanswerable"),
        (COUNT, "None", "write 0, or unanswerable"),
        (NUMBER, "null", "write unanswerable"),
        (DATE, "n/a", "write unanswerable"),
        (BOOLEAN, "unknown", "write unanswerable"),
        (LIST, "none", "write unanswerable"),
    ],
)
def test_words_that_could_mean_zero_or_does_not_say_are_refused(
    item: EvalItem, word: str, says: str
):
    with pytest.raises(ValueError, match=says):
        parse_value(item, word)


def test_free_text_keeps_words_like_none_as_the_answer():
    assert parse_value(TEXT, "None") == "None"
    assert parse_value(TEXT, "n/a") == "n/a"


def test_an_allowed_value_spelled_like_a_marker_is_that_value():
    assert parse_value(CATEGORY, "unknown") == "unknown"
    assert parse_value(CATEGORY, "unanswerable") is None


@pytest.mark.parametrize(
    ("item", "cell", "says"),
    [
        (DATE, "15/06/2020", "YYYY-MM-DD"),
        (DATE, "2020-02-30", "not a calendar day"),
        (DATE, "20200615", "YYYY-MM-DD"),
        (NUMBER, "1,5", "decimals with a point"),
        (NUMBER, "1.5 mg/L", "must be g/dL"),
        (NUMBER, "nan", "not a number"),
        (COUNT, "-1", "whole number"),
        (COUNT, "2.5", "whole number"),
        (BOOLEAN, "maybe", "not yes or no"),
        (CATEGORY, "IgM", "not one of: IgG, IgA, unknown"),
        (LIST, "VRd; Bort", "'Bort' is not one of"),
        (LIST, "[VRd", "not one"),
        (LIST, ";", "holds no value: write the values, or unanswerable"),
        (LIST, "[]", "holds no value"),
        (NUMBER, "1_000", "without '_'"),
        (COUNT, "1_0", "without '_'"),
        (DATE, "2020-01-01T25:00", "not a valid date and time"),
        (DATE, "2020-01-01 10:61", "not a valid date and time"),
    ],
)
def test_a_cell_that_is_not_a_value_of_the_type_is_refused_with_what_to_write(
    item: EvalItem, cell: str, says: str
):
    with pytest.raises(ValueError) as refused:
        parse_value(item, cell)
    assert says in str(refused.value)


def test_evidence_ids_are_split_on_semicolons_commas_and_spaces_once_each():
    assert parse_evidence(" DA1;LA2, EA1  DA1:0\nLA2 ") == ["DA1", "LA2", "EA1", "DA1:0"]
    assert parse_evidence("") == []


@pytest.mark.parametrize(
    ("cell", "ticked"), [("yes", True), ("X", True), ("", False), ("no", False)]
)
def test_the_unanswerable_column_reads_ticks(cell: str, ticked: bool):
    assert parse_flag(cell) is ticked


def test_a_tick_cell_with_anything_else_is_refused():
    with pytest.raises(ValueError, match="not a tick"):
        parse_flag("perhaps")


def test_a_value_written_back_reads_as_the_same_value():
    for item, value in [
        (DATE, "2020-06-15"),
        (NUMBER, 0.1234567),
        (BOOLEAN, False),
        (LIST, ["VRd", "Dara"]),
        (CATEGORY, "IgA"),
        (NUMBER, None),
    ]:
        assert parse_value(item, value_text(value)) == value


def test_the_answer_format_names_unit_and_allowed_values():
    assert answer_format(NUMBER) == "a number in g/dL"
    assert "IgG | IgA | unknown" in answer_format(CATEGORY)
    assert "YYYY-MM-DD" in answer_format(DATE)
    assert "';'" in answer_format(LIST)
