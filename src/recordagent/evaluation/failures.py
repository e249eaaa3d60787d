"""Why answers failed, in words a terminal shows, and a run's failures counted by cause.

:func:`answer_failure` names the cause of a failed answer (one word of
:data:`~recordagent.errors.ModelFailure`), :data:`FAILURE_ADVICE` says what each cause means and
what to do, :func:`failure_line` and :func:`truncation_line` are the one-line notes ``ask`` and
``chat`` print, :func:`shown_text` is an answer's text without a raw dump of the model's output,
and :func:`run_failures` counts a run's failed answers by cause.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from recordagent.errors import MODEL_FAILURES, ModelFailure
from recordagent.evaluation.log import RunRecord
from recordagent.runners import Answer

__all__ = [
    "EXCERPT_CHARS",
    "FAILURE_ADVICE",
    "RunFailures",
    "answer_failure",
    "failure_line",
    "one_line",
    "run_failures",
    "shown_text",
    "truncation_line",
]

EXCERPT_CHARS = 120
"""At most this many characters of a model's unusable output are shown (never all of it)."""
_MESSAGE_CHARS = 400

FAILURE_ADVICE: dict[ModelFailure, str] = {
    "timeout": "no answer within model.timeout_s, and a timed-out request is not resent (is "
    "the endpoint reachable and not overloaded? a slow local server needs a larger "
    "model.timeout_s or a lower model.max_concurrency)",
    "unreachable": "no connection to the model endpoint after the retries (is the endpoint "
    "reachable: the server running, model.base_url right, ending in /v1?)",
    "rate_limited": "the server still answered 429 (too many requests) after the retries "
    "(lower model.max_concurrency, or raise model.max_retries / model.backoff_max_s)",
    "server_error": "the server still failed (HTTP 5xx) after the retries (see the server's "
    "log: a crash, out of memory; lower model.max_concurrency)",
    "refused": "the server refused the request (HTTP 4xx: authentication, model name, a "
    "parameter it does not take; check model.model and model.api_key_env, and for a server "
    "without tools, a system role or response_format set supports_tools: false, system_role: "
    "fold or supports_response_format: false)",
    "context_overflow": "the prompts do not fit the model's context window (set "
    "model.context_window / runners.full_context.window_tokens, or start the server with a "
    "larger context)",
    "output_length": "the model's output was cut off at max_tokens (raise "
    "runners.max_answer_tokens for final answers, runners.max_step_tokens for the other steps)",
    "invalid_output": "the model's structured answers or tool calls did not validate, even after "
    "one repair (a model too weak for the task, or a server that ignores the schema: try "
    "supports_response_format: false; start llama-server with --jinja)",
    "unreadable": "the server's replies are not chat completions (is model.base_url the /v1 "
    "endpoint of an OpenAI-compatible server, not a proxy's page?)",
    "unclassified": "see the answers' traces in the run log; a mock model's script ran out, or "
    "a replay cache had no recording of the request",
}
"""What each failure cause means and what to do about it, in one line (no trailing period)."""

# Trace error kinds of a final answer that was the model's unusable output (kept as its text).
_RAW_OUTPUT_KINDS = frozenset({"answer_unparsed", "answer_value_invalid"})
# 'StructuredOutputError' is how logs written before causes were kept name it.
_INVALID_OUTPUT_KINDS = _RAW_OUTPUT_KINDS | {"invalid_output", "StructuredOutputError"}
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


def answer_failure(answer: Answer) -> ModelFailure | None:
    """Why ``answer`` failed, as one word of :data:`~recordagent.errors.ModelFailure`.

    ``answer.failure`` when the runner set it. Otherwise (a final answer that did not parse,
    or a log written before causes were kept) it is read off the trace and details: an
    unusable final answer is 'invalid_output', an HTTP status or a connection error says the
    rest, and anything else is 'unclassified'.

    Returns:
        None unless the answer's status is 'failed'.
    """
    if answer.status != "failed":
        return None
    if answer.failure is not None:
        return answer.failure
    if any(e.kind == "error" and e.error in _INVALID_OUTPUT_KINDS for e in answer.trace):
        return "invalid_output"
    return _legacy_cause(str(answer.details.get("model_error") or ""))


def _legacy_cause(kind: str) -> ModelFailure:
    """The cause in a log's 'model_error' detail ('ModelError, HTTP 503'), as far as it says."""
    status = _HTTP_STATUS.search(kind)
    if status is not None:
        code = int(status.group(1))
        return "rate_limited" if code == 429 else "server_error" if code >= 500 else "refused"
    if "Timeout" in kind:
        return "timeout"
    if "Connection" in kind:
        return "unreachable"
    if "StructuredOutputError" in kind:
        return "invalid_output"
    return "unclassified"


def failure_line(answer: Answer) -> str | None:
    """One line for a failed answer: ``failed: <cause> — <what happened>``.

    The words are the model error's message when the answer still has it (it is never
    written to run logs), else what the cause means (:data:`FAILURE_ADVICE`); white space is
    collapsed and a long message is cut.

    Returns:
        None unless the answer's status is 'failed'.
    """
    cause = answer_failure(answer)
    if cause is None:
        return None
    words = answer.failure_message or FAILURE_ADVICE[cause]
    return f"failed: {cause} — {one_line(words, _MESSAGE_CHARS)}"


def truncation_line(answer: Answer) -> str | None:
    """One line for a truncated answer: which budget ended the run, and what the value is.

    Returns:
        None unless the answer's status is 'truncated'.
    """
    if answer.status != "truncated":
        return None
    budget = next((e for e in answer.trace if e.kind == "budget"), None)
    which = ""
    if budget is not None:
        which = f" ({budget.name}: {budget.summary})" if budget.summary else f" ({budget.name})"
    value = (
        "no value was reached"
        if answer.value is None or answer.value == []
        else "the value is the best answer so far"
    )
    return f"truncated: a budget ended the run before the model was done{which}; {value}"


def shown_text(answer: Answer, limit: int = EXCERPT_CHARS) -> str:
    """The answer's text as a terminal shows it: never a raw dump of the model's output.

    The text of an answer the model gave is shown whole. A model error's answer has no text
    worth showing (:func:`failure_line` says what happened): ''. A final answer that did not
    parse keeps the model's raw output as its text: a one-line excerpt of at most ``limit``
    characters, labelled as such.
    """
    # A model error's answer (any log's): a final answer that did not parse has a failure
    # ('invalid_output') too, but its text is the model's output.
    if answer.status == "failed" and "model_error" in answer.details:
        return ""
    raw = answer.status == "failed" or any(
        e.kind == "error" and e.error in _RAW_OUTPUT_KINDS for e in answer.trace
    )
    if not raw:
        return answer.text
    if not answer.text.strip():
        return ""
    return (
        f"model output, not a valid answer ({len(answer.text):,} characters): "
        f"{one_line(answer.text, limit)}"
    )


def one_line(text: str, limit: int) -> str:
    """``text`` with its white space collapsed, cut to ``limit`` characters with '…'."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class RunFailures:
    """A run's failed answers, counted by cause.

    Attributes:
        runner: The runner's name.
        answers: The run's answers (one per item).
        causes: Failed answers per cause, the most frequent first; items whose runner raised
            (a bug) are not among them.
        by_error: Items failed by an unexpected error (a bug), counted apart.
        examples: A model error's message per cause, from the answers that still have one
            (answered in this process: run logs do not keep the words).
    """

    runner: str
    answers: int
    causes: tuple[tuple[ModelFailure, int], ...] = ()
    by_error: int = 0
    examples: Mapping[ModelFailure, str] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Answers that failed, bugs included."""
        return sum(n for _, n in self.causes) + self.by_error

    @property
    def all_failed(self) -> bool:
        """Every answer of the run failed by the model (and there was at least one).

        Items failed by a bug do not count: they are the run's error, not the model's.
        """
        return self.answers > 0 and sum(n for _, n in self.causes) == self.answers

    def line(self) -> str:
        """``full_context: 10 of 10 failed — context_overflow 10``."""
        counts = [f"{cause} {n}" for cause, n in self.causes]
        if self.by_error:
            counts.append(f"unexpected error (a bug) {self.by_error}")
        return f"{self.runner}: {self.failed} of {self.answers} failed — {', '.join(counts)}"


def run_failures(runner: str, records: Iterable[RunRecord]) -> RunFailures:
    """``runner``'s failed answers among ``records`` (a run log's), by cause."""
    counted: Counter[ModelFailure] = Counter()
    examples: dict[ModelFailure, str] = {}
    answers = by_error = 0
    for record in records:
        answers += 1
        if record.error is not None:
            by_error += 1
            continue
        cause = answer_failure(record.answer)
        if cause is None:
            continue
        counted[cause] += 1
        if record.answer.failure_message and cause not in examples:
            examples[cause] = one_line(record.answer.failure_message, _MESSAGE_CHARS)
    # Most frequent first; ties in the vocabulary's order, so the line is the same every time.
    causes = tuple(sorted(counted.items(), key=lambda kv: (-kv[1], MODEL_FAILURES.index(kv[0]))))
    return RunFailures(runner, answers, causes, by_error, examples)
