"""A model judge for free-text answers: does the answer say what the reference says?

Structured answers (dates, numbers, categories, ...) are scored by rule and never by a model;
:func:`judge_answer` refuses them. A judge on a mock model is marked ``mock`` in its result,
and the scorer labels such verdicts as not a real judgment.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from recordagent.errors import ModelError
from recordagent.llm.client import ChatModel, parse_structured
from recordagent.llm.types import Message
from recordagent.questions.answer_types import answer_kind
from recordagent.questions.items import EvalItem

__all__ = ["JUDGE_PROMPT_VERSION", "JudgeResult", "JudgeVerdict", "judge_answer"]

JUDGE_PROMPT_VERSION = "judge-v1"
"""Changes whenever the judge's prompt or schema changes: verdicts of two versions differ."""

_SYSTEM = (
    "You grade answers to questions about one patient's medical record. You are given the "
    "question, the reference answer written by a clinician, and the answer to grade. Decide "
    "whether the answer states what the reference states. Wording, order and extra detail do "
    "not matter; a missing or contradicted key fact makes the answer incorrect. An answer "
    "saying the record does not contain the information is incorrect when the reference "
    "gives it. Follow the rubric if one is given. Judge only from the texts given; do not use "
    "your own knowledge of the patient. Reply with correct (true or false) and a one-sentence "
    "rationale naming what matches, or what is missing or wrong."
)


class JudgeVerdict(BaseModel):
    """The judge's structured reply."""

    correct: bool = Field(
        description="True when the answer states what the reference states and contradicts "
        "none of it; false otherwise."
    )
    rationale: str = Field(
        description="One sentence: what matches, or which key fact is missing or wrong."
    )


class JudgeResult(BaseModel):
    """One judging call: the verdict (or why there is none) and what produced it."""

    verdict: JudgeVerdict | None = Field(
        description="The verdict; None when the model failed or its reply did not validate."
    )
    prompt_version: str = Field(description="The judge prompt's version (JUDGE_PROMPT_VERSION).")
    model: str = Field(description="The judge model's name.")
    mock: bool = Field(description="True when a scripted mock judged: not a real judgment.")
    error: str | None = Field(
        default=None,
        description="Why there is no verdict, if there is none (in a run log: its kind only).",
    )
    error_kind: str | None = Field(
        default=None,
        description="The kind of that error: the exception's class, or 'verdict_unparsed'.",
    )
    rationale_chars: int | None = Field(
        default=None,
        description="In a run log: the length of the judge's rationale, which is left out.",
    )

    def for_log(self) -> JudgeResult:
        """The result as a run log keeps it: the verdict without the judge's words.

        The rationale and an error's message are the judge model's text and may quote the
        answer or the reference at length; the log keeps whether the answer was judged
        correct, the rationale's length and the error's kind.
        """
        verdict = self.verdict
        chars = self.rationale_chars
        if verdict is not None and verdict.rationale:
            chars = len(verdict.rationale)
            verdict = verdict.model_copy(update={"rationale": ""})
        error = self.error_kind or ("unclassified" if self.error else None)
        return self.model_copy(
            update={"verdict": verdict, "rationale_chars": chars, "error": error}
        )


def judge_messages(
    item: EvalItem, answer_text: str, reference_text: str, rubric: str | None = None
) -> list[Message]:
    """The judge's conversation for one free-text answer (exposed so it can be inspected)."""
    parts = [
        f"Question: {item.question}",
        f"Reference answer: {reference_text}",
        f"Answer to grade: {answer_text}",
    ]
    if item.as_of is not None:
        parts.insert(1, f"The question asks about the record as of {item.as_of.isoformat()}.")
    if rubric:
        parts.append(f"Rubric: {rubric}")
    return [
        Message(role="system", content=_SYSTEM),
        Message(role="user", content="\n\n".join(parts)),
    ]


async def judge_answer(
    model: ChatModel,
    item: EvalItem,
    answer_text: str,
    reference_text: str,
    rubric: str | None = None,
    **params: Any,
) -> JudgeResult:
    """Ask ``model`` whether a free-text answer matches its reference.

    A model failure (including a reply that does not fit :class:`JudgeVerdict`) gives a result
    with no verdict and the error text, so that one bad call leaves one item ungraded instead
    of ending an evaluation.

    Args:
        model: The judge model.
        item: The free-text item answered.
        answer_text: The answer to grade.
        reference_text: The reference answer.
        rubric: Extra grading instructions for this item, if any.
        **params: Passed to ``model.complete`` (temperature, seed, ...).

    Raises:
        ValueError: ``item`` has a structured answer type (those are scored by rule).
    """
    if not answer_kind(item.answer.type).judged:
        raise ValueError(
            f"the judge grades free-text answers only; item {item.id!r} has a "
            f"{item.answer.type} answer, which is scored by rule"
        )

    def result(
        verdict: JudgeVerdict | None, mock: bool, error: str | None = None, kind: str | None = None
    ) -> JudgeResult:
        return JudgeResult(
            verdict=verdict,
            prompt_version=JUDGE_PROMPT_VERSION,
            model=model.name,
            mock=mock,
            error=error,
            error_kind=kind,
        )

    messages = judge_messages(item, answer_text, reference_text, rubric)
    try:
        completion = await model.complete(messages, response_format=JudgeVerdict, **params)
    except ModelError as exc:  # StructuredOutputError is one
        return result(None, model.is_mock, str(exc), type(exc).__name__)
    mock = model.is_mock or completion.mock
    if completion.parsed is None:
        # Models that validate replies raise instead; others (the mock) return parsed=None.
        _, problem = parse_structured(completion.text, JudgeVerdict)
        return result(
            None,
            mock,
            f"the judge's reply does not fit the verdict schema: {problem}",
            "verdict_unparsed",
        )
    return result(JudgeVerdict.model_validate(completion.parsed), mock)
