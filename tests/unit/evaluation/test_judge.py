"""The free-text judge, run on scripted mock models (their verdicts are marked mock)."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.errors import ModelError, StructuredOutputError
from recordagent.evaluation.judge import (
    JUDGE_PROMPT_VERSION,
    JudgeResult,
    JudgeVerdict,
    judge_answer,
    judge_messages,
)
from recordagent.evaluation.labels import ReferenceLabel
from recordagent.evaluation.scorers import score_answer
from recordagent.llm import Completion, MockModel
from recordagent.questions import AnswerSpec, EvalItem
from recordagent.runners import Answer

TEXT_ITEM = EvalItem(
    id="resp/P1",
    patient_id="P1",
    question="What was the response to induction?",
    answer=AnswerSpec(type="text"),
    as_of=dt.date(2021, 3, 1),
)


async def test_a_scripted_verdict_comes_back_marked_mock():
    model = MockModel([{"json": {"correct": True, "rationale": "Both report a VGPR."}}])
    result = await judge_answer(
        model, TEXT_ITEM, "very good partial response", "VGPR after 4 cycles", rubric="Be strict."
    )
    assert result == JudgeResult(
        verdict=JudgeVerdict(correct=True, rationale="Both report a VGPR."),
        prompt_version=JUDGE_PROMPT_VERSION,
        model="mock",
        mock=True,
        error=None,
    )
    request = model.requests[0]
    assert request.schema_name == "JudgeVerdict"
    user = request.messages[1].content or ""
    assert "Question: What was the response to induction?" in user
    assert "Reference answer: VGPR after 4 cycles" in user
    assert "Answer to grade: very good partial response" in user
    assert "as of 2021-03-01" in user
    assert "Rubric: Be strict." in user


def test_the_prompt_has_no_rubric_line_without_a_rubric():
    messages = judge_messages(TEXT_ITEM, "a", "b")
    assert [m.role for m in messages] == ["system", "user"]
    assert "Rubric" not in (messages[1].content or "")


async def test_a_reply_that_does_not_fit_the_schema_gives_no_verdict():
    model = MockModel(['{"correct": "perhaps"}'])
    result = await judge_answer(model, TEXT_ITEM, "a", "b", None)
    assert result.verdict is None
    assert result.mock is True
    assert result.error is not None
    assert result.error.startswith("the judge's reply does not fit the verdict schema")


async def test_a_structured_output_error_gives_no_verdict_and_its_text():
    def fail(request):
        raise StructuredOutputError("judge: the structured answer did not validate", None)

    result = await judge_answer(MockModel(fail), TEXT_ITEM, "a", "b")
    assert result.verdict is None
    assert result.error == "judge: the structured answer did not validate"


async def test_a_model_error_gives_no_verdict_and_its_text():
    def fail(request):
        raise ModelError("endpoint unreachable after 3 attempts")

    result = await judge_answer(MockModel(fail), TEXT_ITEM, "a", "b")
    assert result.verdict is None
    assert result.error == "endpoint unreachable after 3 attempts"
    assert result.prompt_version == JUDGE_PROMPT_VERSION


async def test_an_exhausted_script_is_a_model_error_not_a_crash():
    result = await judge_answer(MockModel([]), TEXT_ITEM, "a", "b")
    assert result.verdict is None
    assert "scripted replies" in (result.error or "")


async def test_a_mock_completion_is_marked_mock_even_from_a_real_looking_model():
    class Replayed:
        name = "gpt-test"
        is_mock = False

        async def complete(self, messages, tools=None, response_format=None, **params):
            return Completion.model_validate(
                {
                    "message": {"role": "assistant", "content": "{}"},
                    "parsed": {"correct": False, "rationale": "no"},
                    "model": "gpt-test",
                    "mock": True,
                }
            )

    result = await judge_answer(Replayed(), TEXT_ITEM, "a", "b", temperature=0)
    assert result.mock is True
    assert result.model == "gpt-test"


async def test_the_judge_refuses_structured_items():
    date_item = TEXT_ITEM.model_copy(update={"answer": AnswerSpec(type="date")})
    with pytest.raises(ValueError, match="free-text answers only"):
        await judge_answer(MockModel([]), date_item, "2020-01-01", "2020-01-02")


async def test_a_judge_result_grades_a_free_text_answer_end_to_end():
    model = MockModel([{"json": {"correct": False, "rationale": "The reference says PR."}}])
    result = await judge_answer(model, TEXT_ITEM, "complete response", "partial response")
    answer = Answer(
        item_id="resp/P1",
        runner="r",
        prompt_version="v",
        model="m",
        mock=True,
        status="answered",
        value="complete response",
    )
    reference = ReferenceLabel(
        item_id="resp/P1", value="partial response", source="single", annotators=["a"]
    )
    score = score_answer(TEXT_ITEM, answer, reference, judge_verdict=result)
    assert score.state == "incorrect"
    assert score.scorer == "judge-mock"
    assert score.explanation == (
        "'complete response' vs 'partial response': judge mock (MOCK, not a real judgment): "
        "The reference says PR."
    )
