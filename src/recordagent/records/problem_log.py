"""Problems found while validating a bundle: all counted, a few per check kept (or all of them).

:class:`ProblemLog` collects :class:`~recordagent.errors.LoadProblem` s as the checks find them;
an ordinary load shows the first few rows of each check, a quarantining load keeps every row's
problem (``keep_all``) to leave those rows out. It also carries the load's warnings (changes made
to values) and which timestamps were converted from a UTC offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from recordagent.errors import LoadProblem
from recordagent.records.value_rules import ROWS_SHOWN_PER_CHECK

__all__ = ["ProblemLog", "shown_value"]


@dataclass
class ProblemLog:
    """Collects problems; counts all of them but keeps only a few rows per check."""

    problems: list[LoadProblem] = field(default_factory=list)
    total: int = 0
    warnings: list[str] = field(default_factory=list)
    keep_all: bool = False
    """Keep every row's problem, not a few per check (to quarantine the rows)."""
    converted: list[tuple[str, pl.Series]] = field(default_factory=list)
    """Timestamps converted from a UTC offset to local time: file and rows, per column."""

    def warn(self, message: str) -> None:
        """Record a change made to the data while loading it (the load goes on)."""
        self.warnings.append(message)

    def add(self, problem: LoadProblem) -> None:
        """Record one problem."""
        self.total += 1
        self.problems.append(problem)

    def add_rows(
        self,
        file: str,
        column: str | None,
        rows: Sequence[int],
        message: str,
        values: Sequence[object] | None = None,
    ) -> None:
        """Record the same problem on many rows, keeping the first few."""
        self.total += len(rows)
        kept = rows if self.keep_all else rows[:ROWS_SHOWN_PER_CHECK]
        for k, row in enumerate(kept):
            text = message if values is None else f"{message} (got {shown_value(values[k])})"
            self.problems.append(LoadProblem(file, text, row, column))

    def add_where(
        self,
        file: str,
        column: str | None,
        failed: pl.Series,
        rows: pl.Series,
        message: str,
        shown: pl.Series | None = None,
    ) -> None:
        """Record ``message`` on the rows where ``failed`` holds, with their ``shown`` values."""
        values = None if shown is None else shown.filter(failed).to_list()
        self.add_rows(file, column, rows.filter(failed).to_list(), message, values)

    def add_each(self, problems: Sequence[LoadProblem]) -> None:
        """Record problems of one check, one per row, keeping the first few."""
        self.total += len(problems)
        self.problems.extend(problems if self.keep_all else problems[:ROWS_SHOWN_PER_CHECK])

    def extend(self, other: ProblemLog) -> None:
        """Take over every problem of ``other``."""
        self.total += other.total
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)
        self.converted.extend(other.converted)

    def converted_count(self, leaving_out: Sequence[LoadProblem] = ()) -> int:
        """Timestamps converted, in rows that none of ``leaving_out`` names."""
        rows_out: dict[str, list[int]] = {}
        for problem in leaving_out:
            if problem.row is not None:
                rows_out.setdefault(problem.file, []).append(problem.row)
        return sum(
            int((~rows.is_in(rows_out.get(file, []))).sum()) for file, rows in self.converted
        )

    def __bool__(self) -> bool:
        return self.total > 0


def shown_value(value: object) -> str:
    """A value as a problem quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
