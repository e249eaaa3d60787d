"""The final answer every runner ends with: asked for, validated, citations checked."""

from __future__ import annotations

from typing import Any

from recordagent.errors import ModelError, ModelFailure
from recordagent.llm.client import ChatModel
from recordagent.llm.types import Completion, Message
from recordagent.questions.answer_types import answer_kind
from recordagent.questions.answers import coerce_value, final_answer_model
from recordagent.questions.items import EvalItem
from recordagent.runners.base import Answer, AnswerStatus, Citation, Runner
from recordagent.runners.evidence import EvidenceBook
from recordagent.runners.trace import Tracer, loggable_details

__all__ = [
    "FAILURE_TEXT",
    "answer_from_parsed",
    "ask_final_answer",
    "failed_answer",
    "model_error_kind",
    "question_block",
]

FAILURE_TEXT: dict[ModelFailure, str] = {
    "timeout": "no answer within the model's timeout",
    "unreachable": "the model's server could not be reached",
    "rate_limited": "the server still refused for its rate limit after the retries",
    "server_error": "the server still failed after the retries",
    "refused": "the server refused the request",
    "context_overflow": "the prompt does not fit the model's context window",
    "output_length": "the answer was cut off at max_tokens",
    "invalid_output": "the answer did not fit its schema after one repair",
    "unreadable": "the server's reply was not a chat completion",
    "unclassified": "no usable answer from the model",
}
"""What a failed answer's text says for each cause (fixed words: answers are logged)."""


def question_block(item: EvalItem) -> str:
    """The question as the model reads it, with its answer type and the as-of day."""
    spec = item.answer
    lines = [f"Question: {item.question}"]
    kind = spec.type + (f" in {spec.unit}" if spec.unit else "")
    if spec.allowed:
        kind += f" (one of: {', '.join(spec.allowed)})"
    lines.append(f"Answer type: {kind}.")
    if item.as_of is not None:
        lines.append(
            f"Answer as the record stood on {item.as_of:%Y-%m-%d}: ignore anything dated later."
        )
    return "\n".join(lines)


async def ask_final_answer(
    tracer: Tracer,
    model: ChatModel,
    messages: list[Message],
    item: EvalItem,
    params: dict[str, Any],
    *,
    timeout_s: float | None = None,
) -> Completion:
    """One structured-output call for the item's final-answer schema.

    Raises:
        WallTimeSpent: ``timeout_s`` passed first.
        ModelError: The call failed, or the answer was cut off at max_tokens.
    """
    schema = final_answer_model(item.answer)
    return await tracer.complete(
        model, messages, name="answer", response_format=schema, timeout_s=timeout_s, **params
    )


def answer_from_parsed(
    parsed: dict[str, Any] | None,
    raw_text: str,
    item: EvalItem,
    book: EvidenceBook,
    tracer: Tracer,
    *,
    runner: Runner,
    truncated: bool = False,
    details: dict[str, Any] | None = None,
) -> Answer:
    """``runner``'s Answer from a validated final-answer object, citing only rows it showed.

    ``truncated`` marks an answer forced by a spent budget: its status is 'truncated' whatever
    the model said, and its value is the best answer so far. ``details`` are kept as run logs
    may keep them (:func:`~recordagent.runners.trace.loggable_details`).
    """
    # Made loggable first, so that its passage ids take their aliases before the answer's.
    details = loggable_details(details, tracer)
    problem = None  # an error kind (runners.trace.ERROR_KINDS): the trace keeps no message
    if parsed is None:
        problem = "answer_unparsed"
    else:
        try:
            value = coerce_value(item.answer, parsed.get("value"))
        except ValueError:
            problem = "answer_value_invalid"
    if parsed is None or problem is not None:
        tracer.record("error", "answer", error=problem)
        if truncated:
            return failed_answer(
                item, tracer, runner=runner, text=raw_text, details=details, status="truncated"
            )
        # The model answered, but nothing usable: its output was invalid.
        answer = failed_answer(item, tracer, runner=runner, text=raw_text, details=details)
        return answer.model_copy(update={"failure": "invalid_output"})
    cited = [str(c) for c in parsed.get("citations") or []]
    citations, unknown = book.resolve(cited)
    if unknown:
        tracer.record(
            "citation_removed",
            "answer",
            refs=unknown,
            summary=f"removed {len(unknown)} citation(s) never shown in this run",
        )
    status = parsed.get("status", "answered")
    if status == "answered" and value is None:
        # "Answered" with nothing in it is the record being silent, whatever the label says.
        tracer.record("error", "answer", error="answered_without_value")
        status = "insufficient_evidence"
    if truncated:
        status = "truncated"
    tracer.record(
        "answer",
        "answer",
        refs=[c.id for c in citations],
        summary=f"{status}: {_shown(value)} ({len(citations)} citation(s))",
    )
    text = str(parsed.get("text") or "")
    return _answer(item, tracer, runner, status, value, text, citations, details)


def failed_answer(
    item: EvalItem,
    tracer: Tracer,
    *,
    runner: Runner,
    text: str = "",
    details: dict[str, Any] | None = None,
    status: AnswerStatus = "failed",
    error: ModelError | None = None,
) -> Answer:
    """``runner``'s answer without a value: the model failed, or a budget ended the run first.

    With ``error`` (the model failed) the answer is 'failed' with the error's cause as its
    ``failure``, its message for the terminal only, and its kind in ``details['model_error']``;
    the text says what kind of failure it was, in fixed words (the message may quote the
    server's reply or the model's text, and answers are logged).
    """
    no_value = answer_kind(item.answer.type).empty
    failure: dict[str, Any] = {}
    if error is not None:
        kind = model_error_kind(error)
        status = "failed"
        text = f"model error ({kind}): {FAILURE_TEXT[error.cause]}"
        details = {**(details or {}), "model_error": kind}
        failure = {"failure": error.cause, "failure_message": str(error)}
    answer = _answer(item, tracer, runner, status, no_value, text, [], details)
    return answer.model_copy(update=failure) if failure else answer


def model_error_kind(exc: BaseException) -> str:
    """A model failure as answers and logs keep it: the error's class, its cause's, the status.

    'ModelError, HTTP 503' or 'ModelError, APIConnectionError': enough to tell an unreachable
    endpoint from a refused request, without the message (which may quote the server's reply
    or the model's text).
    """
    parts = [type(exc).__name__]
    cause = exc.__cause__
    status = getattr(cause, "status_code", None)
    if isinstance(status, int):
        parts.append(f"HTTP {status}")
    elif cause is not None:
        parts.append(type(cause).__name__)
    return ", ".join(parts)


def _answer(
    item: EvalItem,
    tracer: Tracer,
    runner: Runner,
    status: AnswerStatus,
    value: Any,
    text: str,
    citations: list[Citation],
    details: dict[str, Any] | None,
) -> Answer:
    """The Answer with the run's trace, usage and model."""
    return Answer(
        item_id=item.id,
        patient_id=item.patient_id,
        runner=runner.name,
        prompt_version=runner.prompt_version,
        model=tracer.model_name or "unknown",
        mock=tracer.mock,
        status=status,
        value=value,
        text=text,
        citations=citations,
        trace=list(tracer.events),
        usage=tracer.finish_usage(),
        details=details or {},
    )


def _shown(value: Any) -> str:
    """A value for one progress line, without record text for free-text answers."""
    if isinstance(value, str) and len(value) > 40:
        return f"{len(value)} characters"
    return repr(value) if isinstance(value, str) else str(value)
