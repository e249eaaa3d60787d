"""The progress of a run into a log, as ``eval`` and ``extract`` show it.

A bar per run: items done of all, failed answers, tokens and cost so far, the rate, elapsed
time and ETA. The counts come from the records the log appended since the last look
(:meth:`RunLog.appended`), so a display costs the same per item at any log size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from recordagent.evaluation.log import RunLog
from recordagent.evaluation.run import ItemProgress

__all__ = ["run_progress"]


@contextlib.contextmanager
def run_progress(console: Console, log: RunLog, total: int, label: str) -> Iterator[ItemProgress]:
    """A progress bar for the items of ``log``; yields the ``(done, total)`` callback.

    A half-written line a crash left in the log (cut off when it was opened) is said first.
    """
    if log.recovered_line is not None:
        console.print(
            f"{log.path}: half-written line {log.recovered_line} (interrupted run) "
            "dropped; its item runs again",
            highlight=False,
        )
    seen = failed = tokens = 0
    cost = 0.0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("tokens {task.fields[tokens]:,}"),
        TextColumn("cost ${task.fields[cost]:.4f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(label, total=total, failed=0, tokens=0, cost=0.0, rate="")

        def advance(done: int, all_items: int) -> None:
            nonlocal seen, failed, tokens, cost
            for record in log.appended(seen):
                usage = record.answer.usage
                failed += record.answer.status == "failed"
                tokens += usage.prompt_tokens + usage.completion_tokens
                cost += usage.cost_usd or 0.0
                seen += 1
            speed = bar.tasks[0].speed
            bar.update(
                task,
                completed=done,
                total=all_items,
                failed=failed,
                tokens=tokens,
                cost=cost,
                rate=f"{speed:.2f} items/s" if speed else "",
            )

        yield advance
