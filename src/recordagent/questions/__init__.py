"""Questions: answer types and the items runners answer."""

from recordagent.questions.answer_types import AnswerType
from recordagent.questions.answers import (
    AnswerSpec,
    ScoringSpec,
    coerce_value,
    final_answer_model,
)
from recordagent.questions.items import EvalItem, Question, read_items, write_items

__all__ = [
    "AnswerSpec",
    "AnswerType",
    "EvalItem",
    "Question",
    "ScoringSpec",
    "coerce_value",
    "final_answer_model",
    "read_items",
    "write_items",
]
