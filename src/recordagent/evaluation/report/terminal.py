"""The report in a terminal: rich tables, the error list left to Markdown and HTML."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from recordagent.evaluation.report.model import EvaluationReport
from recordagent.evaluation.report.tables import MOCK_WARNING, report_tables

__all__ = ["render_terminal"]


def render_terminal(report: EvaluationReport, console: Console) -> None:
    """Print the report's tables (the error list is left to the Markdown and HTML reports)."""
    if report.mock:
        console.print(Panel(MOCK_WARNING, style="bold white on red", title="MOCK"))
    console.print(
        f"[bold]Evaluation report[/bold] · {report.items} items · {report.patients} patients · "
        f"{len(report.runners)} runner(s)"
    )
    for spec in report_tables(report, with_items=False):
        table = Table(
            title=spec.title,
            title_justify="left",
            header_style="bold",
            caption=spec.note or None,
            caption_justify="left",
        )
        for k, header in enumerate(spec.headers):
            # Cells hold ids (runners, models, runs, items): one that does not fit is folded
            # onto the next line, never cut with an ellipsis. Piped output is wide enough for
            # none to fold (cli.render.output_console).
            table.add_column(
                header, justify="right" if k in spec.numeric else "left", overflow="fold"
            )
        for row in spec.rows:
            table.add_row(*row)
        console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
