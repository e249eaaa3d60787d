"""The kinds of error recordagent raises, and one way to word a validation error.

Three kinds, by who can act on them:

* :class:`UserError` — the user can fix it (bad path, bad bundle, bad setting). The CLI prints
  the message without a traceback and exits with :attr:`UserError.exit_code`.
* :class:`ToolError` — a tool was called with arguments it cannot serve. Runners return the
  message to the model as corrective text instead of failing the run.
* Anything else is a bug and surfaces with its traceback.

The subclasses of UserError (:class:`DataLoadError`, :class:`ModelError`) only refine the exit
code and the message. :func:`validation_problems` is the one place a pydantic ValidationError is
turned into readable problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "DataLoadError",
    "LoadProblem",
    "MODEL_FAILURES",
    "ModelError",
    "ModelFailure",
    "RecordAgentError",
    "ToolError",
    "UserError",
    "field_path",
    "validation_problems",
]


class RecordAgentError(Exception):
    """Base class of every error recordagent raises on purpose."""


class UserError(RecordAgentError):
    """An error the user can correct; shown without a traceback."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


@dataclass(frozen=True)
class LoadProblem:
    """One thing wrong with a record bundle, located as precisely as the input allows.

    Attributes:
        file: Path of the offending file, relative to the bundle folder.
        message: What is wrong, written so the fix is obvious.
        row: 1-based data row (the header is not counted); ``None`` for whole-file problems.
        column: Column name, where one column is at fault.
    """

    file: str
    message: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class DataLoadError(UserError):
    """A bundle failed validation or loading; the store is left exactly as it was."""

    exit_code = 3

    def __init__(self, problems: Sequence[LoadProblem], *, total: int | None = None) -> None:
        if not problems:
            raise ValueError("DataLoadError needs at least one problem")
        self.problems: tuple[LoadProblem, ...] = tuple(problems)
        self.total = total if total is not None else len(self.problems)
        lines = [str(p) for p in self.problems]
        if self.total > len(lines):
            lines.append(f"... and {self.total - len(lines)} more problem(s) not shown")
        header = (
            "the bundle was not loaded (the store is unchanged): "
            f"{self.total} problem{'s' if self.total != 1 else ''}"
        )
        super().__init__(header + "\n  " + "\n  ".join(lines))


class ToolError(RecordAgentError):
    """A tool could not serve its arguments; the message is returned to the model to correct."""


ModelFailure = Literal[
    "timeout",
    "unreachable",
    "rate_limited",
    "server_error",
    "refused",
    "context_overflow",
    "output_length",
    "invalid_output",
    "unreadable",
    "unclassified",
]
"""Why a model call failed, as answers, traces and study summaries keep it (never the words).

timeout: no answer within ``model.timeout_s`` (not resent: the generation would restart);
unreachable: no connection after the retries; rate_limited: still HTTP 429 after the retries;
server_error: still 5xx after the retries; refused: another 4xx (bad request, authentication);
context_overflow: the prompt does not fit the model's context window; output_length: the
answer was cut off at ``max_tokens``; invalid_output: a structured answer or a tool call in
text that still did not validate after one repair; unreadable: a reply that is not a chat
completion; unclassified: anything else (a mock's exhausted script, a replay-cache miss).
"""

MODEL_FAILURES: tuple[ModelFailure, ...] = get_args(ModelFailure)


class ModelError(UserError):
    """A model call failed for good (retry budget spent, request refused, unusable answer).

    Printed without a traceback, like every UserError. ``cause`` says why in one word of
    :data:`ModelFailure`; ``completion`` is the last reply, if any (its usage counts what the
    failed call spent, retries and repairs included).
    """

    exit_code = 4

    def __init__(
        self, message: str, *, cause: ModelFailure = "unclassified", completion: Any = None
    ) -> None:
        super().__init__(message)
        self.cause: ModelFailure = cause
        self.completion = completion


class StructuredOutputError(ModelError):
    """A structured answer that still did not fit its schema after one repair.

    ``completion`` is the last answer (text, usage), so that a caller can fall back instead of
    failing: a plan that does not parse can be replaced, a final answer marked failed.
    """

    def __init__(self, message: str, completion: Any) -> None:
        super().__init__(message, cause="invalid_output", completion=completion)


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a dotted path (``labs.0.value``); '' for the whole object."""
    return ".".join(str(part) for part in loc)


def validation_problems(
    exc: ValidationError, *, whole: str = "(value)", located: bool = True
) -> list[str]:
    """Each problem of ``exc`` as ``field.path: message``, in pydantic's order.

    Args:
        exc: The validation error.
        whole: What to call the object when a problem is about all of it (no field path).
        located: False gives the messages alone, for a value that is a single field.
    """
    problems = []
    for error in exc.errors():
        # pydantic prefixes the text of a ValueError raised in a validator; it adds nothing.
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{field_path(error['loc']) or whole}: {message}" if located else message)
    return problems
