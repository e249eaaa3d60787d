"""The report as Markdown: GitHub tables, the list of incorrect answers included."""

from __future__ import annotations

from recordagent.evaluation.report.model import EvaluationReport
from recordagent.evaluation.report.tables import MOCK_WARNING, report_tables, summary_line

__all__ = ["render_markdown"]


def render_markdown(report: EvaluationReport) -> str:
    """The report as Markdown (GitHub tables)."""
    lines = ["# Evaluation report", ""]
    if report.mock:
        lines += [f"> **⚠ {MOCK_WARNING}**", ""]
    lines += [summary_line(report), ""]
    for note in report.notes:
        lines.append(f"- {note}")
    if report.notes:
        lines.append("")
    for spec in report_tables(report, with_items=True):
        lines += [f"## {spec.title}", ""]
        if spec.note:
            lines += [spec.note, ""]
        lines.append("| " + " | ".join(_md(h) for h in spec.headers) + " |")
        lines.append(
            "|"
            + "|".join("---:" if k in spec.numeric else "---" for k in range(len(spec.headers)))
            + "|"
        )
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in spec.rows]
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
