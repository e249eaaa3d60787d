"""The three kinds of error recordagent raises.

* :class:`UserError` — the user can fix it (bad path, bad bundle, bad setting). The CLI prints
  the message without a traceback and exits with :attr:`UserError.exit_code`.
* :class:`ToolError` — a tool was called with arguments it cannot serve. Runners return the
  message to the model as corrective text instead of failing the run.
* Anything else is a bug and surfaces with its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DataLoadError",
    "LoadProblem",
    "ModelError",
    "RecordAgentError",
    "ToolError",
    "UserError",
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


class ModelError(UserError):
    """A model call failed for good (retry budget spent, request refused, unusable answer).

    Printed without a traceback, like every UserError.
    """

    exit_code = 4


class StructuredOutputError(ModelError):
    """A structured answer that still did not fit its schema after one repair.

    ``completion`` is the last answer (text, usage), so that a caller can fall back instead of
    failing: a plan that does not parse can be replaced, a final answer marked failed.
    """

    def __init__(self, message: str, completion: Any) -> None:
        super().__init__(message)
        self.completion = completion
