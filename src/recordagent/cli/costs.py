"""What the answers of a report cost: one line per runner and the total."""

from __future__ import annotations

from rich.console import Console

from recordagent.evaluation.report import EvaluationReport

__all__ = ["print_costs"]


def print_costs(console: Console, report: EvaluationReport) -> None:
    """One line per runner: answers, tokens, model calls, cost; then the total."""
    total = 0.0
    priced = False
    for result in report.runners:
        usage = result.usage
        cost = "unpriced" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
        if usage.cost_usd is not None:
            total += usage.cost_usd
            priced = True
        console.print(
            f"cost {result.name}: {usage.answers} answers, {usage.total_tokens:,} tokens, "
            f"{usage.model_calls} model calls, {cost}",
            highlight=False,
        )
    console.print(
        f"cost total: {'$' + format(total, '.4f') if priced else 'unpriced'}", highlight=False
    )
