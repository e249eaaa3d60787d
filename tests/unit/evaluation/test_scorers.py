"""Scorers: every answer type's rule, the status rules, and one-line explanations."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.evaluation import scorers
from recordagent.evaluation.judge import JudgeResult, JudgeVerdict
from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.scorers import Score, score_answer, score_value, values_match
from recordagent.questions import AnswerSpec, EvalItem, ScoringSpec
from recordagent.questions.answer_types import ANSWER_KINDS
from recordagent.runners import Answer
from recordagent.tools.catalogue import Analyte, LabCatalogue


def item(kind: str = "date", *, unit=None, allowed=None, **scoring) -> EvalItem:
    return EvalItem(
        id="t/P1",
        patient_id="P1",
        question="?",
        answer=AnswerSpec(type=kind, unit=unit, allowed=allowed),
        scoring=ScoringSpec(**scoring),
    )


def answer(value, status="answered") -> Answer:
    return Answer(
        item_id="t/P1",
        runner="r",
        prompt_version="v",
        model="m",
        mock=True,
        status=status,
        value=value,
    )


def ref(value) -> ReferenceLabel:
    return ReferenceLabel(item_id="t/P1", value=value, source="single", annotators=["a"])


# --- dates ---------------------------------------------------------------------------------


def test_dates_within_tolerance_match_and_the_explanation_names_both():
    score = score_value(item("date", tolerance_days=3), "2020-06-15", "2020-06-17")
    assert score == Score(
        state="correct",
        explanation="2020-06-15 vs 2020-06-17: 2 days apart, tolerance 3",
        scorer="date",
    )


def test_dates_outside_tolerance_do_not_match():
    score = score_value(item("date", tolerance_days=1), dt.date(2020, 6, 15), "2020-06-17")
    assert score.state == "incorrect"
    assert score.explanation == "2020-06-15 vs 2020-06-17: 2 days apart, tolerance 1"


def test_dates_accept_date_objects_datetimes_and_iso_with_time():
    spec = item("date")
    assert score_value(spec, dt.datetime(2020, 6, 15, 9, 30), "2020-06-15").state == "correct"
    assert score_value(spec, "2020-06-15T09:30:00", dt.date(2020, 6, 15)).state == "correct"
    assert score_value(spec, "2020-06-15", "2020-06-15").explanation.endswith("same day")


def test_a_predicted_non_date_is_incorrect_and_a_bad_reference_is_ungraded():
    spec = item("date")
    wrong = score_value(spec, "June 2020", "2020-06-15")
    assert wrong.state == "incorrect"
    assert "the answer is not a date" in wrong.explanation
    bad_label = score_value(spec, "2020-06-15", "15/06/2020")
    assert bad_label.state == "ungraded"
    assert "the reference label is not a date" in bad_label.explanation
    # A number is not read as a Unix timestamp.
    assert score_value(spec, 20200615, "2020-06-15").state == "incorrect"


# --- numbers -------------------------------------------------------------------------------


def test_numbers_match_within_absolute_or_relative_tolerance():
    either = item("number", unit="g/dL", abs_tol=0.1, rel_tol=0.05)
    # 0.1 apart: within abs_tol (despite float rounding 1.6 - 1.5 = 0.10000000000000009).
    assert score_value(either, 1.6, 1.5).state == "correct"
    # 0.4 apart of 10: outside abs 0.1 but within 5 %.
    score = score_value(either, 10.4, 10.0)
    assert score.state == "correct"
    assert score.explanation == "10.4 g/dL vs 10 g/dL: differ by 0.4, within tolerance ±0.1 or ±5%"
    outside = score_value(either, 11.0, 10.0)
    assert outside.state == "incorrect"
    assert "outside tolerance" in outside.explanation


def test_relative_tolerance_is_taken_against_the_reference():
    spec = item("number", rel_tol=0.1)
    assert score_value(spec, 100, 110.5).state == "correct"  # 10.5 ≤ 10% of 110.5
    assert score_value(spec, 110.5, 100).state == "incorrect"  # 10.5 > 10% of 100


def test_numbers_without_tolerance_must_be_equal_after_rounding():
    spec = item("number")
    assert score_value(spec, 0.1 + 0.2, 0.3).state == "correct"
    score = score_value(spec, 2.5, 2.6)
    assert score.state == "incorrect"
    assert score.explanation == "2.5 vs 2.6: differ by 0.1, exact match required"


def test_a_number_in_the_items_unit_is_read_from_text():
    spec = item("number", unit="g/dL", abs_tol=0.05)
    assert score_value(spec, "1.5 g/dL", 1.5).state == "correct"
    assert score_value(spec, "1.5 G/DL", "1.5").state == "correct"


def test_a_number_in_another_unit_is_converted_by_ucum():
    spec = item("number", unit="g/dL", abs_tol=0.05)
    score = score_value(spec, "15 g/L", 1.5)
    assert score.state == "correct"
    assert score.explanation.startswith("15 g/L (= 1.5 g/dL) vs 1.5 g/dL")
    # Whichever spelling of micro; counts in any of their spellings.
    molar = item("number", unit="mmol/L", rel_tol=0.02)
    assert score_value(molar, "5000 µmol/L", 5.0).state == "correct"
    platelets = item("number", unit="10^9/L", abs_tol=1)
    assert score_value(platelets, "150 K/uL", 150).state == "correct"


def test_a_molar_value_is_not_guessed_into_mass_without_the_analyte():
    creatinine = item("number", unit="mg/dL", rel_tol=0.02)
    score = score_value(creatinine, "88.4 umol/L", 1.0)
    assert score.state == "ungraded"
    assert "converts to mg/dL differently by analyte" in score.explanation


def test_unconvertible_units_are_ungraded_with_the_reason():
    no_unit = score_value(item("number"), "5 mg", 5)
    assert no_unit.state == "ungraded"
    assert "number without a unit" in no_unit.explanation
    not_catalogue = score_value(item("number", unit="furlong"), "5000 g", 5)
    assert not_catalogue.state == "ungraded"
    assert "furlong is not a lab catalogue unit" in not_catalogue.explanation
    no_factor = score_value(item("number", unit="g/dL"), "3 U/L", 3)
    assert no_factor.state == "ungraded"
    assert "no conversion from U/L to g/dL" in no_factor.explanation


def test_a_unit_the_catalogue_converts_differently_per_analyte_is_not_guessed(monkeypatch):
    catalogue = LabCatalogue(
        analytes=[
            Analyte(names=["Calcium"], unit="mg/dL", convert={"mmol/L": 4.008}),
            Analyte(names=["Glucose"], unit="mg/dL", convert={"mmol/L": 18.0}),
        ]
    )
    monkeypatch.setattr(scorers, "packaged_lab_catalogue", lambda: catalogue)
    score = score_value(item("number", unit="mg/dL"), "2.5 mmol/L", 10.02)
    assert score.state == "ungraded"
    assert "mmol/L converts to mg/dL differently by analyte (Calcium, Glucose)" in (
        score.explanation
    )


def test_booleans_and_non_numbers_are_not_numbers():
    spec = item("number")
    assert score_value(spec, True, 1).state == "incorrect"
    assert score_value(spec, "a lot", 1).state == "incorrect"


# --- counts, booleans ----------------------------------------------------------------------


def test_counts_are_exact():
    spec = item("count")
    assert score_value(spec, 3, "3").state == "correct"
    score = score_value(spec, 3, 4)
    assert score.state == "incorrect"
    assert score.explanation == "3 vs 4: differ by 1, counts must be equal"
    assert score_value(spec, 3.5, 3).state == "incorrect"


def test_booleans_accept_yes_no_true_false_strings():
    spec = item("boolean")
    assert score_value(spec, "yes", True).state == "correct"
    assert score_value(spec, "False", "no").state == "correct"
    score = score_value(spec, "yes", False)
    assert score.state == "incorrect"
    assert score.explanation == "true vs false: differ"
    assert score_value(spec, "maybe", True).state == "incorrect"


# --- categories and lists -------------------------------------------------------------------

ISOTYPE = {"allowed": ("IgG", "IgA", "light chain only")}
SYNONYMS = {"light chain only": ("LCMM", "Bence Jones", "light-chain")}


def test_categories_ignore_case_and_spacing():
    spec = item("category", **ISOTYPE)
    assert score_value(spec, "igg", "IgG").state == "correct"
    assert score_value(spec, "Light  Chain only", "light chain only").state == "correct"
    wrong = score_value(spec, "IgA", "IgG")
    assert wrong.state == "incorrect"
    assert wrong.explanation == "'IgA' vs 'IgG': different categories"


@pytest.mark.parametrize(
    ("predicted", "reference"),
    [("LCMM", "light chain only"), ("light chain only", "bence jones"), ("LCMM", "Light-Chain")],
)
def test_category_synonyms_work_both_ways(predicted, reference):
    spec = item("category", **ISOTYPE, synonyms=SYNONYMS)
    score = score_value(spec, predicted, reference)
    assert score.state == "correct"
    assert score.explanation.endswith("same category (synonym)")


def test_lists_exact_compare_sets_after_normalisation():
    spec = item("list", synonyms={"t(4;14)": ("FGFR3/MMSET",)})
    assert score_value(spec, ["del(17p)", "fgfr3/mmset"], ["t(4;14)", "DEL(17p)"]).state == (
        "correct"
    )
    score = score_value(spec, ["del(17p)", "t(11;14)"], ["del(17p)", "t(4;14)"])
    assert score.state == "incorrect"
    assert score.explanation == (
        "[del(17p), t(11;14)] vs [del(17p), t(4;14)]: sets differ: missing t(4;14); extra t(11;14)"
    )


def test_lists_f1_are_correct_from_half_and_report_the_f1():
    spec = item("list", list_match="f1")
    half = score_value(spec, ["a", "x"], ["a", "b"])
    assert half.state == "correct"
    assert half.explanation == "[a, x] vs [a, b]: F1 0.50, at least 0.5; missing b; extra x"
    assert half.scorer == "list-f1"
    low = score_value(spec, ["a", "x", "y"], ["a", "b", "c"])  # P=1/3, R=1/3
    assert low.state == "incorrect"
    assert "F1 0.33, below 0.5" in low.explanation
    assert score_value(spec, ["x"], ["a"]).state == "incorrect"


def test_empty_lists_mean_no_value():
    spec = item("list")
    assert score_value(spec, [], []).state == "correct"
    missing = score_value(spec, [], ["a"])
    assert missing.state == "incorrect"
    assert missing.explanation == "[] vs ['a']: the answer gives no value"
    silent = score_value(spec, ["a"], None)
    assert silent.explanation == "['a'] vs no value: the record does not say"
    assert score_value(spec, "a", ["A"]).state == "correct"  # one value for a list


def test_free_text_is_ungraded_by_score_value():
    score = score_value(item("text"), "in remission", "complete response")
    assert score.state == "ungraded"
    assert "judge" in score.explanation


def test_every_answer_type_has_a_scorer():
    assert set(scorers.SCORERS) == set(ANSWER_KINDS)


# --- score_answer: status rules ---------------------------------------------------------------


def test_no_reference_label_is_ungraded():
    score = score_answer(item("date"), answer("2020-06-15"), None)
    assert score.state == "ungraded"
    assert score.explanation.endswith("no reference label")
    assert score.correct is None


def test_a_failed_answer_is_incorrect():
    score = score_answer(item("date"), answer(None, "failed"), ref("2020-06-15"))
    assert score.state == "incorrect"
    assert score.explanation == "no answer (failed) vs '2020-06-15'"


@pytest.mark.parametrize(
    ("kind", "value", "status", "state"),
    [
        ("date", None, "insufficient_evidence", "correct"),
        ("date", None, "answered", "correct"),
        ("list", [], "answered", "correct"),
        ("date", "2020-06-15", "insufficient_evidence", "correct"),
        ("date", "2020-06-15", "answered", "incorrect"),
        ("text", "he had a fall", "answered", "incorrect"),
    ],
)
def test_when_the_record_does_not_say_only_no_value_is_correct(kind, value, status, state):
    score = score_answer(item(kind), answer(value, status), ref(None))
    assert score.state == state
    assert score.scorer == "record-silent"
    assert "the record does not say" in score.explanation


def test_no_value_against_a_reference_is_incorrect():
    score = score_answer(item("date"), answer(None, "insufficient_evidence"), ref("2020-06-15"))
    assert score.state == "incorrect"
    assert score.explanation == (
        "no value (insufficient_evidence) vs '2020-06-15': the answer gives no value"
    )


def test_a_truncated_answer_is_scored_on_its_value():
    score = score_answer(item("count"), answer(2, "truncated"), ref(2))
    assert score.state == "correct"
    assert score.explanation == "2 vs 2: equal (truncated run, scored on its value)"


def test_an_answered_value_is_scored_by_type():
    score = score_answer(
        item("date", tolerance_days=3), answer(dt.date(2020, 6, 15)), ref("2020-06-17")
    )
    assert score.explanation == "2020-06-15 vs 2020-06-17: 2 days apart, tolerance 3"
    assert score.correct is True


def test_mismatched_item_ids_are_refused():
    with pytest.raises(ValueError, match="reference label is for item"):
        score_answer(
            item("count"),
            answer(1),
            ReferenceLabel(item_id="other", value=1, source="single", annotators=["a"]),
        )


# --- score_answer: free text and judge verdicts -------------------------------------------------


def test_free_text_without_a_verdict_is_ungraded():
    score = score_answer(item("text"), answer("in remission"), ref("complete response"))
    assert score.state == "ungraded"
    assert score.explanation == "'in remission' vs 'complete response': free text, no judge verdict"


def test_free_text_with_a_verdict_takes_it():
    verdict = JudgeVerdict(correct=True, rationale="Both say the disease is in remission.")
    score = score_answer(
        item("text"), answer("in remission"), ref("complete response"), judge_verdict=verdict
    )
    assert score.state == "correct"
    assert score.scorer == "judge"
    assert score.explanation.endswith("judge: Both say the disease is in remission.")


def test_a_mock_judges_verdict_is_labelled_as_not_a_real_judgment():
    result = JudgeResult(
        verdict=JudgeVerdict(correct=False, rationale="Different.\nReally."),
        prompt_version="judge-v1",
        model="mock",
        mock=True,
    )
    score = score_answer(item("text"), answer("x"), ref("y"), judge_verdict=result)
    assert score.state == "incorrect"
    assert score.scorer == "judge-mock"
    assert "MOCK, not a real judgment" in score.explanation
    assert "\n" not in score.explanation


def test_a_judge_without_a_verdict_leaves_the_item_ungraded():
    result = JudgeResult(
        verdict=None, prompt_version="judge-v1", model="gpt", mock=False, error="timed out"
    )
    score = score_answer(item("text"), answer("x"), ref("y"), judge_verdict=result)
    assert score.state == "ungraded"
    assert "judge gpt gave no verdict (timed out)" in score.explanation


def test_a_judge_verdict_for_a_structured_type_is_refused():
    verdict = JudgeVerdict(correct=True, rationale="close enough")
    with pytest.raises(ValueError, match="free-text answers only"):
        score_answer(item("date"), answer("2020-06-15"), ref("2020-06-15"), judge_verdict=verdict)


# --- values_match --------------------------------------------------------------------------------


def test_values_match_uses_tolerances_in_both_directions():
    spec = item("number", rel_tol=0.1)
    assert values_match(spec, 100, 109)  # 9 ≤ 10% of 109 or of 100
    assert values_match(spec, 109, 100)
    assert values_match(item("date", tolerance_days=2), "2020-06-15", "2020-06-17")
    assert not values_match(item("date", tolerance_days=1), "2020-06-15", "2020-06-17")


def test_values_match_requires_equal_list_sets_even_under_f1():
    spec = item("list", list_match="f1")
    assert not values_match(spec, ["a", "x"], ["a", "b"])
    assert values_match(spec, ["B", "a"], ["a", "b"])


def test_values_match_without_an_item_is_normalised_equality():
    assert values_match(None, " IgG  Kappa", "igg kappa")
    assert values_match(None, 1, 1.0)
    assert values_match(None, ["b", "a"], ["a", "b"])
    assert values_match(None, None, None)
    assert not values_match(None, "2020-06-15", "2020-06-16")
    assert not values_match(None, None, "x")


def test_a_label_outside_the_allowed_values_leaves_the_item_ungraded():
    from recordagent.evaluation.scorers import score_value
    from recordagent.questions import AnswerSpec, EvalItem

    category = EvalItem(
        id="c/A",
        patient_id="A",
        question="q",
        answer=AnswerSpec(type="category", allowed=("IgG", "IgA", "light chain")),
    )
    score = score_value(category, "IgG", "IgG kappa")
    assert score.state == "ungraded" and "allowed values" in score.explanation
    assert score_value(category, "IgG", "igg").state == "correct"
    listed = EvalItem(
        id="l/A",
        patient_id="A",
        question="q",
        answer=AnswerSpec(type="list", allowed=("hypercalcaemia", "anaemia", "bone lesions")),
    )
    # A CSV cell 'anaemia, bone lesions' (not a JSON list) is one value, not two.
    assert score_value(listed, ["anaemia", "bone lesions"], "anaemia, bone lesions").state == (
        "ungraded"
    )
    assert score_value(listed, ["anaemia"], ["anaemia"]).state == "correct"
