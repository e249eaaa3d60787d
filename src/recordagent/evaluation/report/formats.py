"""How the report writes its numbers: percentages, intervals, p-values, dollars, values.

Shared by the tables and the plots, so that a number reads the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from recordagent.evaluation.stats import Concordance

__all__ = ["concordance_cell", "interval", "p_value", "percent", "short", "usd"]


def percent(x: float) -> str:
    """A proportion as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def interval(bounds: tuple[float, float]) -> str:
    """An interval of proportions in percent, without the percent sign."""
    return f"{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}"


def p_value(p: float) -> str:
    """A p-value with three decimals, or '<0.001'."""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def usd(x: float | None) -> str:
    """A cost in dollars ('—' when unpriced): four decimals below a dollar."""
    if x is None:
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def concordance_cell(c: Concordance) -> str:
    """A concordance in one cell: rate, Wilson interval, graded items."""
    if c.n == 0:
        return "— (n=0)"
    return f"{percent(c.rate)} ({interval(c.wilson)}) n={c.n}"


def short(text: Any, limit: int = 60) -> str:
    """A value (text or JSON) cut to ``limit`` characters; 'no value' for none."""
    if text is None or text == []:
        return "no value"
    shown = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
