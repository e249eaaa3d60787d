"""Questions: answer types and the items runners answer."""

from recordagent.questions.answers import (
    AnswerSpec,
    AnswerType,
    ScoringSpec,
    coerce_value,
    final_answer_model,
)
from recordagent.questions.items import EvalItem

__all__ = [
    "AnswerSpec",
    "AnswerType",
    "EvalItem",
    "ScoringSpec",
    "coerce_value",
    "final_answer_model",
]
