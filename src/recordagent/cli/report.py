"""``recordagent report``: the evaluation report from run logs, without calling any model."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from recordagent.cli.costs import print_costs
from recordagent.errors import UserError
from recordagent.evaluation.labels import read_labels, reference_labels
from recordagent.evaluation.log import RunLog, RunLogWarning
from recordagent.evaluation.report import build_report, render_html, render_terminal
from recordagent.paths import path_kind, write_text

__all__ = ["report"]


def report(
    logs: Annotated[list[Path], typer.Argument(help="Run logs (JSONL), one per runner.")],
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labels file (.csv, .jsonl, .parquet): agreement and, with --rescore, "
            "the references."
        ),
    ] = None,
    rescore: Annotated[
        bool,
        typer.Option("--rescore", help="Score every answer again against --labels."),
    ] = False,
    html: Annotated[Path | None, typer.Option(help="Also write the report as HTML here.")] = None,
) -> None:
    """Print the report of the run logs (stored scores, or rescored against --labels)."""
    if rescore and labels is None:
        raise UserError("--rescore needs --labels (the labels to score against)")
    if html is not None and path_kind(html, "--html") == "folder":
        raise UserError(f"--html {html} is a folder; give the HTML file to write")
    console = Console()
    runs = []
    for path in logs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RunLogWarning)
            runs.append(RunLog.read(path))
        for warning in caught:
            console.print(f"warning: {warning.message}", highlight=False)
    label_rows = read_labels(labels) if labels is not None else []
    references = None
    if rescore:
        items = {r.item.id: r.item for _, records in runs for r in records}
        references, unresolved = reference_labels(label_rows, items)
        if unresolved:
            console.print(f"{len(unresolved)} labelled items have no reference (unresolved)")
    result = build_report(runs, references, labels=label_rows)
    render_terminal(result, console)
    print_costs(console, result)
    if html is not None:
        write_text(html, render_html(result), "HTML report")
        console.print(f"written: {html}", highlight=False)
